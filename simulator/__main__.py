"""`python -m simulator`: the command line (simulator/cli.py)."""

import sys

from simulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
