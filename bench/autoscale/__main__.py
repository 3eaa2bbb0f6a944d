"""`python -m bench.autoscale`, the same as `python -m bench autoscale`."""

import sys

from bench.autoscale.cli import main

sys.exit(main())
