"""The four kinds of evidence the scorecard collects: where each one's results live, and which
command produces them when they are missing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from toolkit.results import STAMP_FORMAT


@dataclass(frozen=True, slots=True)
class Source:
    key: str  # its folder under results/, and its section's id on the page
    title: str
    main_file: str  # the file that must be in a run's folder
    command: tuple[str, ...]  # what produces a result, run from the repository's root
    duration: str  # how long that takes, as the message says
    quick: bool  # whether --run-missing runs it

    @property
    def command_line(self) -> str:
        return " ".join(self.command)


CONTRACT = Source(
    "contract",
    "Contract suite",
    "results.json",
    ("make", "test-integration"),
    "about 11 minutes, plus the image build when one is missing",
    quick=False,
)
HOSTILE = Source(
    "hostile",
    "Hostile suite",
    "results.json",
    (".venv/bin/python", "-m", "pytest", "-m", "hostile", "tests/hostile"),
    "a few minutes",
    quick=True,
)
LOADTEST = Source(
    "loadtest",
    "Load comparison",
    "results.json",
    ("make", "loadtest"),
    "about 10 minutes; make loadtest-smoke is the 2-minute check, not a measurement",
    quick=False,
)
BENCH = Source(
    "bench",
    "Benchmark",
    "results.json",
    ("make", "bench"),
    "about 15 minutes; make bench-smoke is the 2-minute check, not a measurement",
    quick=False,
)
SOURCES = (CONTRACT, HOSTILE, LOADTEST, BENCH)


def is_run_folder(path: Path) -> bool:
    """A folder named by toolkit.results.stamp (20261204T071500Z): one run's results."""
    if not path.is_dir():
        return False
    try:
        datetime.strptime(path.name, STAMP_FORMAT)
    except ValueError:
        return False
    return True


def latest_run(results_root: Path, source: Source) -> Path | None:
    """The newest run folder of `source` under `results_root`, or None when there is none."""
    parent = results_root / source.key
    if not parent.is_dir():
        return None
    runs = sorted(p for p in parent.iterdir() if is_run_folder(p))
    return runs[-1] if runs else None
