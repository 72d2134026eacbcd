"""The collector on small result folders: present, missing, malformed, and the latest of several."""

from pathlib import Path

import pytest

from scorecard.collect import Collector, FigureCard, Missing, SuiteCard
from scorecard.sources import BENCH, CONTRACT, HOSTILE, LOADTEST
from scorecard.tests import results


def test_reads_the_latest_of_each_kind(tmp_path: Path) -> None:
    results.suite(tmp_path, "contract", "20261201T000000Z", gateways=["old"], cases=[])
    results.suite(tmp_path, "contract", "20261204T080000Z")
    (tmp_path / "contract" / "notes").mkdir()  # not a run's folder: ignored
    results.suite(tmp_path, "hostile")
    results.bench(tmp_path)
    results.loadtest(tmp_path)
    card = Collector(tmp_path).collect()

    assert isinstance(card.contract, SuiteCard)
    assert card.contract.gateways == ("gateway", "nginx")
    assert card.contract.counts("nginx") == {"pass": 1, "deviation": 1, "skip": 1}  # nosec B105: an outcome named pass
    assert card.contract.stated.machine == "Test CPU, 2 cores, 1.0 GiB RAM"
    assert card.contract.stated.files == (
        tmp_path / "contract" / "20261204T080000Z" / "results.json",
    )
    [(gateway, case, cell)] = card.contract.notes("deviation")
    assert (gateway, case.name, cell.reason) == (
        "nginx",
        "test_status",
        "nginx: no /status counters",
    )
    assert [(g, c.name) for g, c, _ in card.contract.notes()] == [
        ("nginx", "test_status"),
        ("gateway", "test_bad_header"),
        ("nginx", "test_bad_header"),
    ]
    assert [group for group, _ in card.contract.groups()] == [
        "1. balance",
        "7. /status",
        "10. bad input",
    ]

    assert isinstance(card.bench, FigureCard)
    captions = [caption for caption, _ in card.bench.tables]
    assert captions == ["Medians of the rounds", "Ours divided by each other gateway (same run)"]
    _, (header, rows) = card.bench.tables[1]
    assert header == ["figure", "nginx"]
    assert ["CPU per request (us)", "1.36x"] in rows
    assert len(card.bench.charts) == 4
    assert all(chart.svg.startswith("<svg") for chart in card.bench.charts)
    assert card.bench.stated.note == ""

    assert isinstance(card.loadtest, FigureCard)
    assert card.loadtest.stated.machine == "Test CPU, 2 cores, 1.0 GiB RAM"
    [chart] = card.loadtest.charts
    assert chart.png_base64
    assert chart.title == "Steady load: over time"
    _, (header, rows) = card.loadtest.tables[0]
    assert header == ["", "ours", "nginx"]
    assert ["requests/s", "200.2", "200.2"] in rows


def test_says_for_each_missing_kind_which_command_produces_it(tmp_path: Path) -> None:
    card = Collector(tmp_path / "results").collect()
    for section, source in zip(card.sections, (CONTRACT, HOSTILE, LOADTEST, BENCH), strict=True):
        assert isinstance(section, Missing)
        assert section.source is source
        assert str(tmp_path / "results" / source.key) in section.reason
        assert source.command_line in section.advice
    assert "make test-integration" in card.sections[0].advice  # type: ignore[union-attr]
    assert "make bench" in card.sections[3].advice  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("{not json", "is not JSON"),
        ('{"gateways": []}', "no 'cases'"),
        ('{"gateways": [1], "cases": []}', "a gateway's name is not text"),
        ("[]", "is not a suite's results"),
        (
            '{"gateways": ["a"], "cases": [{"id": "t", "results": {"a": {"outcome": "great"}}}]}',
            "unknown outcome 'great'",
        ),
    ],
)
def test_a_malformed_suite_result_is_named_with_what_is_wrong(
    tmp_path: Path, content: str, said: str
) -> None:
    folder = tmp_path / "hostile" / "20261204T080000Z"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(content)
    section = Collector(tmp_path).suite(HOSTILE)
    assert isinstance(section, Missing)
    assert said in section.reason
    assert str(folder / "results.json") in section.reason


def test_a_malformed_or_unfinished_figure_result_is_missing(tmp_path: Path) -> None:
    (tmp_path / "bench" / "20261204T080000Z").mkdir(parents=True)  # the run stopped early
    folder = results.loadtest(tmp_path)
    (folder / "meta.json").unlink()
    card = Collector(tmp_path).collect()
    assert isinstance(card.bench, Missing)
    assert "has no results.json (stopped before the end?)" in card.bench.reason
    assert isinstance(card.loadtest, Missing)
    assert "cannot be read" in card.loadtest.reason

    bench = results.bench(tmp_path, "20261205T000000Z")
    (bench / "results.json").write_text('{"medians": {}}')
    section = Collector(tmp_path).figures(BENCH)
    assert isinstance(section, Missing)
    assert "is not a benchmark's results" in section.reason


def test_a_smoke_run_says_it_is_no_measurement(tmp_path: Path) -> None:
    results.bench(tmp_path, smoke=True)
    results.loadtest(tmp_path, mode="short")
    card = Collector(tmp_path).collect()
    assert isinstance(card.bench, FigureCard)
    assert card.bench.stated.note == "smoke run: not a measurement"
    assert isinstance(card.loadtest, FigureCard)
    assert "not a measurement" in card.loadtest.stated.note
