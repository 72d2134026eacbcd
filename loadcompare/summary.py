"""The side-by-side markdown summary of a comparison, rendered from the runs' typed results."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from loadcompare.analysis import BrownOutFigures, FailoverFigures, OutageFigures
from loadcompare.plan import Scenario
from loadcompare.results import Comparison, GatewayView, Results, RunResult, Runs
from toolkit.tables import markdown_table

SCENARIO_TITLES = {
    Scenario.STEADY: "Steady load",
    Scenario.FAILOVER_KILL: (
        "Failover: one storage container killed (Docker API), then started again"
    ),
    Scenario.FAILOVER_FAULT: (
        "Failover: one storage service made unavailable (fault injection), then back"
    ),
    Scenario.ALL_DOWN: "All storage services unavailable, then back",
    Scenario.BROWN_OUT: (
        "Brown-out: every storage service slow and failing half its requests (`flaky`), then back"
    ),
}

SHARE_FILE = "share.png"


def timeline_file(scenario: Scenario) -> str:
    """The chart of one scenario over time, in the comparison's folder."""
    return f"timeline-{scenario}.png"


Figure = int | float | None
Cell = Callable[[RunResult], str]
Row = tuple[str, list[str]]


def fmt(value: object, unit: str = "", digits: int = 1) -> str:
    """A figure for a table cell; a missing figure is shown as such, never as 0."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value}{unit}"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def _table(gateways: Sequence[str], rows: Sequence[Row]) -> list[str]:
    """Figures right-aligned, one column per gateway."""
    return markdown_table(
        ["", *gateways],
        ([label, *cells] for label, cells in rows),
        right=range(1, len(gateways) + 1),
    )


def _row(label: str, runs: Runs, gateways: Sequence[str], cell: Cell) -> Row:
    return label, ["no result" if (r := runs.get(g)) is None else cell(r) for g in gateways]


def _failover(figure: Callable[[FailoverFigures], Figure], unit: str = "", digits: int = 1) -> Cell:
    return lambda r: fmt(None if r.failover is None else figure(r.failover), unit, digits)


def _outage(figure: Callable[[OutageFigures], Figure], unit: str = "", digits: int = 1) -> Cell:
    return lambda r: fmt(None if r.outage is None else figure(r.outage), unit, digits)


def _brown_out(
    figure: Callable[[BrownOutFigures], Figure], unit: str = "", digits: int = 1
) -> Cell:
    return lambda r: fmt(None if r.brown_out is None else figure(r.brown_out), unit, digits)


def _brown_out_rows(runs: Runs, gateways: Sequence[str]) -> list[Row]:
    return [
        _row(
            "requests reaching storage per client request",
            runs,
            gateways,
            _brown_out(lambda b: b.per_request, digits=2),
        ),
        _row(
            "requests during the brown-out", runs, gateways, _brown_out(lambda b: b.requests_during)
        ),
        _row("failed requests during it", runs, gateways, _brown_out(lambda b: b.errors_during)),
        _row(
            "requests storage received meanwhile",
            runs,
            gateways,
            _brown_out(lambda b: b.storage_requests),
        ),
    ]


def _seen(figure: Callable[[GatewayView], Figure]) -> Cell:
    return lambda r: fmt(None if r.gateway_view is None else figure(r.gateway_view), " s", 2)


def _common_rows(runs: Runs, gateways: Sequence[str]) -> list[Row]:
    return [
        _row("requests/s", runs, gateways, lambda r: fmt(r.locust.rps)),
        _row("requests", runs, gateways, lambda r: fmt(r.locust.requests)),
        _row(
            "failed requests",
            runs,
            gateways,
            lambda r: f"{r.locust.failures} ({fmt(100.0 * r.locust.fail_ratio, '%', 2)})",
        ),
        _row("p50 latency", runs, gateways, lambda r: fmt(r.locust.p50_ms, " ms")),
        _row("p95 latency", runs, gateways, lambda r: fmt(r.locust.p95_ms, " ms")),
        _row("p99 latency", runs, gateways, lambda r: fmt(r.locust.p99_ms, " ms")),
    ]


def _share_rows(runs: Runs, gateways: Sequence[str]) -> list[Row]:
    instances = sorted({i for r in runs.values() if r for i in r.share})

    def cell(instance: str) -> Cell:
        def render(r: RunResult) -> str:
            total = sum(r.share.values())
            if not total:
                return "n/a"
            count = r.share.get(instance, 0)
            return f"{100.0 * count / total:.1f}% ({count})"

        return render

    rows = [_row(f"share {i}", runs, gateways, cell(i)) for i in instances]
    rows.append(
        _row(
            "max deviation from even share",
            runs,
            gateways,
            lambda r: fmt(r.share_max_deviation_pp, " pp"),
        )
    )
    return rows


def _failover_rows(runs: Runs, gateways: Sequence[str]) -> list[Row]:
    return [
        _row("failed requests while down", runs, gateways, _failover(lambda f: f.errors_during)),
        _row("requests while down", runs, gateways, _failover(lambda f: f.requests_during)),
        _row("failed requests after recovery", runs, gateways, _failover(lambda f: f.errors_after)),
        _row(
            "detection time (last error or answer from it)",
            runs,
            gateways,
            _failover(lambda f: f.detection_s, " s", 2),
        ),
        _row(
            "`/status` shows it unavailable after",
            runs,
            gateways,
            _seen(lambda v: v.unavailable_after_s),
        ),
        _row(
            "recovery time (first answer from it again)",
            runs,
            gateways,
            _failover(lambda f: f.back_in_rotation_s, " s", 2),
        ),
        _row(
            "`/status` shows it available after",
            runs,
            gateways,
            _seen(lambda v: v.available_after_s),
        ),
        _row("p99 latency while down", runs, gateways, _failover(lambda f: f.p99_during_ms, " ms")),
    ]


def _outage_rows(runs: Runs, gateways: Sequence[str]) -> list[Row]:
    def statuses(r: RunResult) -> str:
        counts = r.outage.status_during if r.outage is not None else {}
        return ", ".join(f"{code}: {n}" for code, n in counts.items()) or "n/a"

    p50 = _outage(lambda o: o.latency_503_p50_ms, " ms")
    slowest = _outage(lambda o: o.latency_503_max_ms, " ms")
    return [
        _row("status codes while down", runs, gateways, statuses),
        _row("503 latency p50 / max", runs, gateways, lambda r: f"{p50(r)} / {slowest(r)}"),
        _row(
            "time until 200s resumed",
            runs,
            gateways,
            _outage(lambda o: o.first_2xx_after_s, " s", 2),
        ),
        _row("failed requests after recovery", runs, gateways, _outage(lambda o: o.errors_after)),
    ]


def _failover_figure(figure: Callable[[FailoverFigures], Figure]) -> Callable[[RunResult], Figure]:
    return lambda r: None if r.failover is None else figure(r.failover)


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    scenario: Scenario
    figure: Callable[[RunResult], Figure]  # lower is better
    # Differences up to this much (absolute, or relative to the better figure) are called a tie:
    # single runs on a shared machine do not support finer verdicts.
    tie_abs: float
    tie_rel: float = 0.0


QUESTIONS = (
    Question(
        "Spreads steady load more evenly (max deviation, pp)",
        Scenario.STEADY,
        lambda r: r.share_max_deviation_pp,
        tie_abs=1.0,
    ),
    Question("Lower steady p95 latency (ms)", Scenario.STEADY, lambda r: r.locust.p95_ms, 2.0, 0.2),
    Question(
        "Fewer failed requests when a storage container is killed",
        Scenario.FAILOVER_KILL,
        _failover_figure(lambda f: f.errors_during),
        tie_abs=0.0,
    ),
    Question(
        "Fewer failed requests when a storage service turns unavailable",
        Scenario.FAILOVER_FAULT,
        _failover_figure(lambda f: f.errors_during),
        tie_abs=0.0,
    ),
    Question(
        "Faster back to serving after a kill (s)",
        Scenario.FAILOVER_KILL,
        _failover_figure(lambda f: f.back_in_rotation_s),
        0.5,
        0.2,
    ),
    Question(
        "Faster back to serving after unavailability (s)",
        Scenario.FAILOVER_FAULT,
        _failover_figure(lambda f: f.back_in_rotation_s),
        0.5,
        0.2,
    ),
    Question(
        "Faster to resume after all were down (s)",
        Scenario.ALL_DOWN,
        lambda r: None if r.outage is None else r.outage.first_2xx_after_s,
        0.5,
        0.2,
    ),
    Question(
        "Fewer requests reaching storage per client request in a brown-out",
        Scenario.BROWN_OUT,
        lambda r: None if r.brown_out is None else r.brown_out.per_request,
        0.1,
    ),
)


def answer(runs: Runs, question: Question) -> str:
    """The gateway with the lower figure, `about the same`, or why there is no answer."""
    figures: dict[str, int | float] = {}
    for gateway, result in runs.items():
        value = None if result is None else question.figure(result)
        if isinstance(value, int | float):
            figures[gateway] = value
    if len(figures) < 2:
        return "no answer: a figure is missing (see the table)"
    best = min(figures, key=lambda g: figures[g])
    listed = " vs ".join(f"{g} {fmt(v, digits=2)}" for g, v in figures.items())
    gap = max(figures.values()) - figures[best]
    if gap == 0:
        return f"the same ({listed})"
    if gap <= max(question.tie_abs, question.tie_rel * figures[best]):
        return f"about the same ({listed})"
    return f"**{best}** ({listed})"


def verdicts(results: Results) -> list[str]:
    """One line per question the comparison answers, straight from the figures below it."""
    lines = []
    for question in QUESTIONS:
        runs = results.get(question.scenario)
        if runs:
            lines.append(f"- {question.text}: {answer(runs, question)}")
    return lines


def scenario_rows(scenario: Scenario, runs: Runs, gateways: Sequence[str]) -> list[Row]:
    """One scenario's table: (label, a cell per gateway) rows; the scorecard shows them too."""
    rows = _common_rows(runs, gateways)
    if scenario is Scenario.STEADY:
        rows += _share_rows(runs, gateways)
    elif scenario is Scenario.ALL_DOWN:
        rows += _outage_rows(runs, gateways)
    elif scenario is Scenario.BROWN_OUT:
        rows += _brown_out_rows(runs, gateways)
    else:
        rows += _failover_rows(runs, gateways)
    return rows


def render(comparison: Comparison, files: Sequence[str]) -> str:
    results, meta, gateways = comparison.results, comparison.meta, comparison.gateways
    lines = [
        f"# Load test comparison: {' vs '.join(gateways)}",
        "",
        f"{meta.mode} run, started {meta.started_at}, {meta.duration} in all. Each scenario ran "
        "against each gateway with identical settings, one gateway at a time, load from "
        f"{meta.load_generator}.",
        "",
        "## Answers",
        "",
        *verdicts(results),
        "",
        "Single runs on a shared machine: small differences are called `about the same`; "
        "rerun before concluding from a close call.",
    ]
    for scenario, runs in results.items():
        lines += ["", f"## {SCENARIO_TITLES[scenario]}", ""]
        lines += _table(gateways, scenario_rows(scenario, runs, gateways))
        errors = [f"- {g}: {r.error}" for g, r in runs.items() if r and r.error]
        errors += [f"- {g}: {w}" for g, r in runs.items() if r for w in r.warnings]
        missing = [f"- {g}: the run produced no result" for g, r in runs.items() if r is None]
        if errors or missing:
            lines += ["", "Problems:", *errors, *missing]
        chart = timeline_file(scenario)
        if chart in files:
            lines += ["", f"![{scenario} over time]({chart})"]
        if scenario is Scenario.STEADY and SHARE_FILE in files:
            lines += ["", f"![share per storage instance]({SHARE_FILE})"]
    lines += [
        "",
        "## How to read this",
        "",
        *READING_NOTES,
        "",
        "## Settings, versions, machine",
        "",
    ]
    lines += [f"- {key}: {value}" for key, value in meta.to_json().items()]
    lines += ["", "## Files", "", *[f"- [{name}]({name})" for name in files], ""]
    return "\n".join(lines)


READING_NOTES = [
    "- **share**: successful responses per storage instance, from the `instance` in each body. "
    "**max deviation** is the largest gap, in percentage points, between one instance's share and "
    "an even split (33.3% for three); an instance that served nothing counts.",
    "- **failed requests while down**: responses that were not 200 with an `instance`, between the "
    "moment the fault took effect and the moment the service was brought back.",
    "- **detection time**: seconds from the fault until the last request that either failed or was "
    "still answered by the failed service; after it, clients no longer noticed the fault. 0 means "
    "the gateway hid the fault completely (it retried elsewhere).",
    "- **recovery time**: seconds from bringing the service back (container started, or fault mode "
    "`normal`) until the first response it served through the gateway; n/a: not within the run.",
    "- **`/status` ... after**: the gateway's own view, polled every 0.25 s during the run.",
    "- **time until 200s resumed**: seconds from bringing every service back to the first 200.",
    "- **requests reaching storage per client request** (brown-out): the `/data` requests the "
    "storage services counted themselves (`GET /admin/requests`) between the fault and the "
    "recovery, over the client requests completed meanwhile; 1 plus the share retried, so what a "
    "brown-out multiplies its own load by.",
    "- requests/s and latency percentiles are locust's own figures (its HTML report has the rest).",
]
