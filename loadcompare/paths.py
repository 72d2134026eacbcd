"""Where the comparison runs its commands from, and the folder locust loads the scenarios from."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOCUSTFILES = REPO / "loadtests"  # `locust -f` this folder: it holds nothing but the locustfile
