from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from toolkit.results import RESULTS_ROOT, run_folder, stamp


def test_the_stamp_is_utc_and_sorts_as_text() -> None:
    paris = timezone(timedelta(hours=1))

    assert stamp(datetime(2026, 11, 25, 8, 15, 0, tzinfo=paris)) == "20261125T071500Z"
    assert stamp(datetime(2026, 1, 2, tzinfo=UTC)) < stamp(datetime(2026, 1, 10, tzinfo=UTC))


def test_a_run_folder_is_created_under_its_parent(tmp_path: Path) -> None:
    folder = run_folder(tmp_path / "bench", datetime(2026, 11, 25, 7, 15, tzinfo=UTC))

    assert folder == tmp_path / "bench" / "20261125T071500Z"
    assert folder.is_dir()


def test_a_folder_can_be_named_before_it_is_needed(tmp_path: Path) -> None:
    folder = run_folder(tmp_path, create=False)

    assert folder.parent == tmp_path
    assert not folder.exists()


def test_results_live_in_the_projects_results_folder() -> None:
    assert Path(__file__).resolve().parents[2] / "results" == RESULTS_ROOT
