"""Each run's results in a folder of its own: results/<tool>/<UTC time>/."""

from datetime import UTC, datetime
from pathlib import Path

RESULTS_ROOT = Path(__file__).resolve().parent.parent / "results"
# Sorts by time as text, and has no character a shell or a file system objects to.
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


def stamp(when: datetime) -> str:
    """`when` as a folder name, in UTC (20261125T071500Z)."""
    return when.astimezone(UTC).strftime(STAMP_FORMAT)


def run_folder(parent: Path, when: datetime | None = None, *, create: bool = True) -> Path:
    """`parent`/<UTC time of `when`, default now>, created unless `create` is False."""
    folder = parent / stamp(when or datetime.now(UTC))
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return folder
