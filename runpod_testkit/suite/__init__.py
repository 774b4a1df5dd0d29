"""The contract suite's machinery: pytest options, targets, the job ledger and the summary.

The checks themselves live in the top-level `contract/` folder; `conftest.py` loads
`runpod_testkit.suite.plugin`.
"""
