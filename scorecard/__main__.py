import sys

from scorecard.cli import main

sys.exit(main())
