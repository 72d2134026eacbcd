"""`--readme`: the marked sections rewritten from one scorecard, the rest of the README kept."""

from pathlib import Path

import pytest

from scorecard.cli import REPO_ROOT
from scorecard.collect import Collector
from scorecard.readme import ReadmeError, marker_pattern, rewrite
from scorecard.sources import SOURCES
from scorecard.tests import results

README = """# project

Some text.

<!-- scorecard:contract -->
old contract table
<!-- /scorecard:contract -->

<!-- scorecard:bench -->
old bench table
<!-- /scorecard:bench -->

<!-- scorecard:loadtest -->
old load table
<!-- /scorecard:loadtest -->

The end.
"""


def test_rewrites_marked_sections_with_date_and_machine(tmp_path: Path) -> None:
    results.suite(tmp_path, "contract")
    results.bench(tmp_path)
    text, said = rewrite(README, Collector(tmp_path).collect())
    assert "old contract table" not in text
    assert "old bench table" not in text
    assert "the run of 2026-12-04T08:00:00Z on Test CPU, 2 cores, 1.0 GiB RAM" in text
    assert "| 7. /status | pass 1 | deviation 1 |" in text
    assert "| all cases | FAIL 1, pass 2 | deviation 1, skip 1, pass 1 |" in text
    assert "| CPU per request (us) |" in text
    # The figures the suite measured follow, by their scenario's number.
    measured = "| 5. recovery (s) | 0.62 (no traffic) | - |\n| 6. first 2xx"
    assert f"| all cases | FAIL 1, pass 2 | deviation 1, skip 1, pass 1 |\n{measured}" in text
    assert text.startswith("# project\n\nSome text.\n")
    assert text.endswith("The end.\n")
    # The load comparison is missing: its section stays as it was, and the terminal says why.
    assert "old load table" in text
    assert any(line.startswith("README loadtest: kept as it was: no load") for line in said)
    assert "README hostile: no <!-- scorecard:hostile -->" in "\n".join(said)
    # Run again from the same results: nothing changes.
    again, _ = rewrite(text, Collector(tmp_path).collect())
    assert again == text


def test_a_smoke_run_does_not_replace_a_measurement(tmp_path: Path) -> None:
    results.bench(tmp_path, smoke=True)
    text, said = rewrite(README, Collector(tmp_path).collect())
    assert "old bench table" in text
    assert "README bench: kept as it was: the latest is a smoke run: not a measurement" in said


def test_markup_in_a_result_cannot_reach_the_readme(tmp_path: Path) -> None:
    results.suite(tmp_path, "contract", gateways=["<b>x</b>|y"], cases=[])
    text, _ = rewrite(README, Collector(tmp_path).collect())
    assert "<b>" not in text
    assert "&lt;b&gt;x&lt;/b&gt;\\|y" in text


def test_a_section_marked_twice_is_refused(tmp_path: Path) -> None:
    results.suite(tmp_path, "contract")
    with pytest.raises(ReadmeError, match="2 sections marked scorecard:contract"):
        rewrite(README + README, Collector(tmp_path).collect())


def test_the_projects_readme_marks_each_table_once() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    for source in SOURCES:
        assert len(marker_pattern(source.key).findall(readme)) == 1, source.key


def test_a_long_table_counts_what_every_gateway_passed_in_one_row(tmp_path: Path) -> None:
    passed = {"gateway": results.cell("pass"), "nginx": results.cell("pass")}
    cases = [
        {"id": f"t.py::test_{n}", "group": f"{n}. case {n}", "results": passed}
        for n in range(20, 0, -1)
    ]
    cases.append(
        {
            "id": "t.py::test_odd",
            "group": "21. odd",
            "results": {"gateway": results.cell("pass"), "nginx": results.cell("fail", "x")},
        }
    )
    results.suite(tmp_path, "contract", cases=cases, measurements={})
    text, _ = rewrite(README, Collector(tmp_path).collect())
    table = text.split("<!-- scorecard:contract -->")[1].split("<!-- /scorecard:contract -->")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1:] == [
        "| 21. odd | pass 1 | FAIL 1 |",
        "| 20 more, passed by every gateway (on the scorecard page) | pass | pass |",
        "| all cases | pass 21 | FAIL 1, pass 20 |",
    ]
