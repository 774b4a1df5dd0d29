"""`python -m runpod_testkit` is the `runpod-testkit` command."""

import sys

from runpod_testkit.cli import main

sys.exit(main())
