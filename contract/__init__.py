"""Contract checks of a Runpod queue-based endpoint (see conftest.py and _support.py)."""
