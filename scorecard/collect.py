"""The latest result of each source, read into what the page and the README show.

Every way a result can be absent or unreadable ends in a `Missing` with one sentence and the
command that produces it: the scorecard is built from whatever is there, never a traceback.
"""

from __future__ import annotations

import base64
import json
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.report import ORDER, ROWS, figures, ratios, render_figures
from loadcompare.plan import Scenario
from loadcompare.results import Comparison
from loadcompare.summary import SCENARIO_TITLES, scenario_rows
from scorecard.sources import BENCH, CONTRACT, HOSTILE, LOADTEST, Source, latest_run
from scorecard.svg import bars
from toolkit.suite_results import DEVIATION, FAIL, PASS, SKIP

OUTCOMES = (PASS, DEVIATION, FAIL, SKIP)


class Malformed(Exception):
    """A result file that exists but cannot be read as its kind."""


@dataclass(frozen=True, slots=True)
class Missing:
    source: Source
    reason: str  # one sentence: what is missing or wrong

    @property
    def advice(self) -> str:
        return f"`{self.source.command_line}` produces it ({self.source.duration})."


@dataclass(frozen=True, slots=True)
class Stated:
    """What every figure comes with: when it was measured, on what, and its raw files."""

    date: str
    machine: str
    files: tuple[Path, ...]
    note: str = ""  # e.g. "smoke run: not a measurement"


@dataclass(frozen=True, slots=True)
class Cell:
    outcome: str  # pass, deviation, fail, skip
    reason: str | None


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    group: str | None
    results: Mapping[str, Cell]  # gateway -> its outcome; absent: not run against it

    @property
    def name(self) -> str:
        """The test's own name, without its module."""
        return self.id.rpartition("::")[2]


@dataclass(frozen=True, slots=True)
class SuiteCard:
    source: Source
    stated: Stated
    gateways: tuple[str, ...]
    cases: tuple[Case, ...]
    args: tuple[str, ...]
    exit_status: int | None = None  # pytest's: 0 all passed, 1 some failed, 2 interrupted
    # figures the tests recorded: (name, gateway -> value), by the number they start with
    measurements: tuple[tuple[str, Mapping[str, str]], ...] = ()

    def counts(self, gateway: str) -> Counter[str]:
        return Counter(c.results[gateway].outcome for c in self.cases if gateway in c.results)

    def groups(self) -> list[tuple[str, list[Case]]]:
        """The cases by group, in the order of their numbers ("7. /status"), the others last."""
        grouped: dict[str, list[Case]] = {}
        for case in self.cases:
            grouped.setdefault(case.group or "other", []).append(case)
        return sorted(grouped.items(), key=lambda item: _group_order(item[0]))

    def notes(self, outcome: str | None = None) -> list[tuple[str, Case, Cell]]:
        """(gateway, case, cell) of every cell but a pass (or of `outcome`), in the table's
        order: listed below it."""
        return [
            (gateway, case, cell)
            for _, cases in self.groups()
            for case in cases
            for gateway in self.gateways
            if (cell := case.results.get(gateway)) is not None
            and cell.outcome != PASS
            and outcome in (None, cell.outcome)
        ]


Table = tuple[list[str], list[list[str]]]  # header, rows


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    svg: str = ""  # inline SVG markup, built by the scorecard itself
    png_base64: str = ""  # a PNG the run drew, embedded


@dataclass(frozen=True, slots=True)
class FigureCard:
    source: Source
    stated: Stated
    tables: tuple[tuple[str, Table], ...]  # (caption, table)
    charts: tuple[Chart, ...]
    markdown: str  # the README's section


@dataclass(frozen=True, slots=True)
class Scorecard:
    contract: SuiteCard | Missing
    hostile: SuiteCard | Missing
    loadtest: FigureCard | Missing
    bench: FigureCard | Missing

    @property
    def sections(self) -> tuple[SuiteCard | FigureCard | Missing, ...]:
        return (self.contract, self.hostile, self.loadtest, self.bench)


def _group_order(group: str) -> tuple[int, str]:
    number, dot, _ = group.partition(".")
    return (int(number), group) if dot and number.strip().isdigit() else (sys.maxsize, group)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as error:
        raise Malformed(f"{path} cannot be read: {error.strerror or error}") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise Malformed(f"{path} is not JSON: {error}") from error


def _str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise Malformed(f"{what} is not text")
    return value


def suite_card(source: Source, folder: Path) -> SuiteCard:
    path = folder / source.main_file
    data = _read_json(path)
    try:
        gateways = tuple(_str(g, "a gateway's name") for g in data["gateways"])
        cases = []
        for raw in data["cases"]:
            results = {}
            for gateway, cell in raw["results"].items():
                outcome = _str(cell["outcome"], "an outcome")
                if outcome not in OUTCOMES:
                    raise Malformed(f"unknown outcome {outcome!r}")
                reason = cell.get("reason")
                results[_str(gateway, "a gateway")] = Cell(
                    outcome, None if reason is None else str(reason)
                )
            group = raw.get("group")
            cases.append(
                Case(_str(raw["id"], "a case id"), None if group is None else str(group), results)
            )
        machine = data["machine"]
        stated = Stated(
            date=_str(data["started_at"], "started_at"),
            machine=_str(machine["summary"], "the machine"),
            files=(path,),
        )
        args = tuple(str(a) for a in data.get("pytest_args", []))
        status = data.get("exit_status")
        measured = data.get("measurements", {})
        measurements = tuple(
            sorted(
                (
                    (str(name), {str(g): str(v) for g, v in values.items()})
                    for name, values in measured.items()
                ),
                key=lambda item: _group_order(item[0]),
            )
        )
    except (KeyError, TypeError, AttributeError, Malformed) as error:
        raise Malformed(f"{path} is not a suite's results ({_what(error)})") from error
    exit_status = status if isinstance(status, int) else None
    return SuiteCard(source, stated, gateways, tuple(cases), args, exit_status, measurements)


def _what(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"no {error.args[0]!r}"
    return str(error)


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"
    return text + unit


def _figure(key: str, value: float | None) -> str:
    if key == "errors" and value is not None:
        return f"{value:,.0f}"
    return _number(value)


def bench_card(folder: Path) -> FigureCard:
    path = folder / BENCH.main_file
    data = _read_json(path)
    try:
        table = figures(data)
        versus = ratios(data)
        names = [n for n in ORDER if n in table] + sorted(n for n in table if n not in ORDER)
        connections = data["settings"]["connections"]
        rows = [
            [label.format(n=connections), *(_figure(key, table[n].get(key)) for n in names)]
            for key, label in ROWS
        ]
        ratio_rows = [
            [label.format(n=connections), *(_ratio(versus[o].get(key)) for o in versus)]
            for key, label in ROWS
        ]
        machine = data["machine"]
        stated = Stated(
            date=_str(data["started_at"], "started_at"),
            machine=f"{machine['cpu_model']}, {machine['nproc']} cores, Linux {machine['kernel']}",
            files=tuple(p for p in (path, folder / "results.md") if p.exists()),
            note="smoke run: not a measurement" if data["settings"].get("smoke") else "",
        )
        charts = tuple(
            Chart(title, svg=bars(title, {n: table[n].get(key) for n in names}))
            for key, title in CHARTED
        )
        markdown = render_figures(data)
    except (KeyError, TypeError, AttributeError, ValueError, Malformed) as error:
        raise Malformed(f"{path} is not a benchmark's results ({_what(error)})") from error
    return FigureCard(
        BENCH,
        stated,
        (
            ("Medians of the rounds", (["figure", *names], rows)),
            ("Ours divided by each other gateway (same run)", (["figure", *versus], ratio_rows)),
        ),
        charts,
        markdown,
    )


# The benchmark's figures drawn as bars, one chart each.
CHARTED = (
    ("requests_per_s", "requests/s"),
    ("cpu_us_per_request", "CPU per request (us)"),
    ("added_p50_us", "added p50 latency over direct, 1 connection (us)"),
    ("added_p99_us", "added p99 latency over direct, 1 connection (us)"),
)


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def loadtest_card(folder: Path) -> FigureCard:
    path = folder / LOADTEST.main_file
    try:
        comparison = Comparison.load(folder)
    except OSError as error:
        raise Malformed(f"{folder} cannot be read: {error}") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise Malformed(f"{folder}: a results file is not JSON: {error}") from error
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise Malformed(f"{path} is not a load comparison's results ({_what(error)})") from error
    gateways = comparison.gateways
    tables = []
    markdown = []
    for scenario, runs in comparison.results.items():
        rows = scenario_rows(scenario, runs, gateways)
        caption = SCENARIO_TITLES[scenario]
        tables.append((caption, (["", *gateways], [[label, *cells] for label, cells in rows])))
        markdown += _markdown_rows(scenario, rows)
    charts = tuple(
        Chart(_chart_title(png.name), png_base64=base64.b64encode(png.read_bytes()).decode())
        for png in sorted(folder.glob("*.png"))
    )
    meta = comparison.meta
    summary = folder / "summary.md"
    stated = Stated(
        date=meta.started_at,
        machine=meta.context.get("machine", "not stated"),
        files=tuple(p for p in (summary, path, folder / "meta.json") if p.exists()),
        note="short run (make loadtest-smoke): not a measurement" if meta.mode == "short" else "",
    )
    header = "| | " + " | ".join(gateways) + " |"
    rule = "|---|" + "---:|" * len(gateways)
    return FigureCard(LOADTEST, stated, tuple(tables), charts, "\n".join([header, rule, *markdown]))


def _markdown_rows(scenario: Scenario, rows: Sequence[tuple[str, list[str]]]) -> list[str]:
    return [f"| {scenario}: {label} | " + " | ".join(cells) + " |" for label, cells in rows]


def _chart_title(name: str) -> str:
    stem = name.removesuffix(".png")
    if stem.startswith("timeline-"):
        scenario = stem.removeprefix("timeline-")
        titles = {str(s): t for s, t in SCENARIO_TITLES.items()}
        return f"{titles.get(scenario, scenario)}: over time"
    return "steady load: share per storage instance" if stem == "share" else stem


@dataclass
class Collector:
    """Reads the latest result of every source under `results_root`."""

    results_root: Path
    problems: list[str] = field(default_factory=list)

    def suite(self, source: Source) -> SuiteCard | Missing:
        folder = latest_run(self.results_root, source)
        if folder is None:
            return Missing(source, f"no {source.title.lower()} results in {self._where(source)}")
        try:
            return suite_card(source, folder)
        except Malformed as error:
            return Missing(source, f"the latest result is unusable: {error}")

    def figures(self, source: Source) -> FigureCard | Missing:
        folder = latest_run(self.results_root, source)
        if folder is None:
            return Missing(source, f"no {source.title.lower()} results in {self._where(source)}")
        if not (folder / source.main_file).exists():
            return Missing(
                source,
                f"the latest run, {folder}, has no {source.main_file} (stopped before the end?)",
            )
        try:
            return loadtest_card(folder) if source is LOADTEST else bench_card(folder)
        except Malformed as error:
            return Missing(source, f"the latest result is unusable: {error}")

    def _where(self, source: Source) -> str:
        return str(self.results_root / source.key) + "/"

    def collect(self) -> Scorecard:
        return Scorecard(
            contract=self.suite(CONTRACT),
            hostile=self.suite(HOSTILE),
            loadtest=self.figures(LOADTEST),
            bench=self.figures(BENCH),
        )
