"""`python -m bench.replicas`: see bench/replicas/cli.py."""

import sys

from bench.replicas.cli import main

sys.exit(main())
