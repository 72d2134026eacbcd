"""`python -m loadtests`: the gateway comparison, whose driver is `loadcompare` (see its cli)."""

import sys

from loadcompare.cli import main

if __name__ == "__main__":
    sys.exit(main())
