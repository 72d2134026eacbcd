"""`python -m scorecard`: the page from whatever is there, with no traceback for what is not."""

import subprocess
import sys
from pathlib import Path

import pytest

from scorecard.cli import REPO_ROOT, main, run_missing
from scorecard.collect import Missing, Scorecard
from scorecard.sources import BENCH, CONTRACT, HOSTILE, LOADTEST, Source
from scorecard.tests import results


def test_nothing_there_still_gives_a_page_and_the_commands(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scorecard", "--results-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "Contract suite: missing: no contract suite results" in done.stdout
    assert "`make test-integration` produces it" in done.stdout
    assert "`make bench` produces it" in done.stdout
    assert (tmp_path / "report" / "index.html").is_file()


def test_malformed_results_are_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = results.suite(tmp_path, "contract")
    (folder / "results.json").write_text("\x00garbage")
    assert main(["--results-dir", str(tmp_path), "--require", "hostile"]) == 1
    out, err = capsys.readouterr()
    assert "Contract suite: missing: the latest result is unusable:" in out
    assert "is not JSON" in out
    assert "required but missing: hostile" in err


def test_readme_is_rewritten_in_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results.suite(tmp_path, "hostile")
    readme = tmp_path / "README.md"
    readme.write_text("a\n<!-- scorecard:hostile -->\nold\n<!-- /scorecard:hostile -->\nb\n")
    assert main(["--results-dir", str(tmp_path), "--readme", str(readme)]) == 0
    assert "old" not in readme.read_text()
    assert "README hostile: rewritten (2026-12-04T08:00:00Z)" in capsys.readouterr().out


def test_run_missing_runs_only_the_quick_commands(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    quick = Source(
        "hostile",
        "Hostile suite",
        "results.json",
        (sys.executable, "-c", f"open({str(marker)!r}, 'a').write('x')"),
        "seconds",
        quick=True,
    )
    slow = Source("bench", "Benchmark", "results.json", ("false",), "hours", quick=False)
    card = Scorecard(
        Missing(CONTRACT, "-"), Missing(quick, "-"), Missing(LOADTEST, "-"), Missing(slow, "-")
    )
    assert run_missing(card, tmp_path) == [quick]
    assert marker.read_text() == "x"
    assert HOSTILE.quick
    assert [s.key for s in (CONTRACT, LOADTEST, BENCH) if s.quick] == []
