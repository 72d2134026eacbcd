"""`python -m loadtests`: how many locust workers each run gets, and refusing a bad count."""

import subprocess
import sys
from itertools import pairwise
from pathlib import Path

from loadcompare.cli import arguments
from loadcompare.matrix import locust_command
from loadcompare.plan import Scenario
from loadcompare.targets import Gateway

REPO = Path(__file__).resolve().parent.parent.parent
OURS = Gateway("ours", "http://127.0.0.1:8000")


def command(*argv: str) -> list[str]:
    return locust_command(arguments(list(argv)).load, OURS, Scenario.STEADY, Path("/tmp/x"))


def test_by_default_each_run_is_one_local_locust_process() -> None:
    assert not {"--processes", "--master", "--worker"} & set(command())


def test_workers_become_local_worker_processes_of_a_master_on_loopback() -> None:
    argv = command("--workers", "2")

    options = dict(pairwise(argv))
    assert options["--processes"] == "2"
    assert options["--master-bind-host"] == "127.0.0.1"
    assert options["--master-bind-port"] == options["--master-port"]


def test_a_negative_worker_count_is_refused_with_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loadtests", "--workers", "-1"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].endswith(
        "argument --workers: expected 0 or a positive whole number, got '-1'"
    )
