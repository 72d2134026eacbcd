"""The side-by-side markdown summary of a comparison, rendered from the runs' JSON results."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from toolkit.tables import markdown_table

Result = dict[str, Any]
# scenario -> gateway -> the run's result (None when the run produced none)
Results = Mapping[str, Mapping[str, Result | None]]

SCENARIO_TITLES = {
    "steady": "Steady load",
    "failover-kill": "Failover: one storage container killed (Docker API), then started again",
    "failover-fault": "Failover: one storage service made unavailable (fault injection), then back",
    "all-down": "All storage services unavailable, then back",
}


def fmt(value: Any, unit: str = "", digits: int = 1) -> str:
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


def _get(result: Result | None, *path: str) -> Any:
    value: Any = result
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _table(gateways: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    """Figures right-aligned, one column per gateway."""
    return markdown_table(
        ["", *gateways],
        ([label, *cells] for label, cells in rows),
        right=range(1, len(gateways) + 1),
    )


def _row(
    label: str, runs: Mapping[str, Result | None], gateways: Sequence[str], cell: Callable[..., str]
) -> tuple[str, list[str]]:
    return label, [cell(runs.get(g)) if runs.get(g) is not None else "no result" for g in gateways]


def _common_rows(runs: Mapping[str, Result | None], gateways: Sequence[str]) -> list[Any]:
    return [
        _row("requests/s", runs, gateways, lambda r: fmt(_get(r, "locust", "rps"))),
        _row("requests", runs, gateways, lambda r: fmt(_get(r, "locust", "requests"))),
        _row(
            "failed requests",
            runs,
            gateways,
            lambda r: (
                f"{_get(r, 'locust', 'failures')} "
                f"({fmt(100.0 * (_get(r, 'locust', 'fail_ratio') or 0.0), '%', 2)})"
            ),
        ),
        _row("p50 latency", runs, gateways, lambda r: fmt(_get(r, "locust", "p50_ms"), " ms")),
        _row("p95 latency", runs, gateways, lambda r: fmt(_get(r, "locust", "p95_ms"), " ms")),
        _row("p99 latency", runs, gateways, lambda r: fmt(_get(r, "locust", "p99_ms"), " ms")),
    ]


def _share_rows(runs: Mapping[str, Result | None], gateways: Sequence[str]) -> list[Any]:
    instances = sorted({i for r in runs.values() if r for i in r.get("share", {})})

    def cell(instance: str) -> Callable[[Result], str]:
        def render(r: Result) -> str:
            counts: dict[str, int] = r.get("share", {})
            total = sum(counts.values())
            if not total:
                return "n/a"
            return f"{100.0 * counts.get(instance, 0) / total:.1f}% ({counts.get(instance, 0)})"

        return render

    rows = [_row(f"share {i}", runs, gateways, cell(i)) for i in instances]
    rows.append(
        _row(
            "max deviation from even share",
            runs,
            gateways,
            lambda r: fmt(r.get("share_max_deviation_pp"), " pp"),
        )
    )
    return rows


def _failover_rows(runs: Mapping[str, Result | None], gateways: Sequence[str]) -> list[Any]:
    def f(*path: str, unit: str = "", digits: int = 1) -> Callable[[Result], str]:
        return lambda r: fmt(_get(r, *path), unit, digits)

    return [
        _row("failed requests while down", runs, gateways, f("failover", "errors_during")),
        _row("requests while down", runs, gateways, f("failover", "requests_during")),
        _row("failed requests after recovery", runs, gateways, f("failover", "errors_after")),
        _row(
            "detection time (last error or answer from it)",
            runs,
            gateways,
            f("failover", "detection_s", unit=" s", digits=2),
        ),
        _row(
            "`/status` shows it unavailable after",
            runs,
            gateways,
            f("gateway_view", "unavailable_after_s", unit=" s", digits=2),
        ),
        _row(
            "recovery time (first answer from it again)",
            runs,
            gateways,
            f("failover", "recovery_s", unit=" s", digits=2),
        ),
        _row(
            "`/status` shows it available after",
            runs,
            gateways,
            f("gateway_view", "available_after_s", unit=" s", digits=2),
        ),
        _row("p99 latency while down", runs, gateways, f("failover", "p99_during_ms", unit=" ms")),
    ]


def _outage_rows(runs: Mapping[str, Result | None], gateways: Sequence[str]) -> list[Any]:
    def statuses(r: Result) -> str:
        counts: dict[str, int] = _get(r, "outage", "status_during") or {}
        return ", ".join(f"{code}: {n}" for code, n in counts.items()) or "n/a"

    return [
        _row("status codes while down", runs, gateways, statuses),
        _row(
            "503 latency p50 / max",
            runs,
            gateways,
            lambda r: (
                f"{fmt(_get(r, 'outage', 'latency_503_p50_ms'), ' ms')} / "
                f"{fmt(_get(r, 'outage', 'latency_503_max_ms'), ' ms')}"
            ),
        ),
        _row(
            "time until 200s resumed",
            runs,
            gateways,
            lambda r: fmt(_get(r, "outage", "resume_s"), " s", 2),
        ),
        _row(
            "failed requests after recovery",
            runs,
            gateways,
            lambda r: fmt(_get(r, "outage", "errors_after")),
        ),
    ]


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    scenario: str
    path: tuple[str, ...]
    # Differences up to this much (absolute, or relative to the better figure) are called a tie:
    # single runs on a shared machine do not support finer verdicts.
    tie_abs: float
    tie_rel: float = 0.0


QUESTIONS = (
    Question(
        "Spreads steady load more evenly (max deviation, pp)",
        "steady",
        ("share_max_deviation_pp",),
        tie_abs=1.0,
    ),
    Question("Lower steady p95 latency (ms)", "steady", ("locust", "p95_ms"), 2.0, 0.2),
    Question(
        "Fewer failed requests when a storage container is killed",
        "failover-kill",
        ("failover", "errors_during"),
        tie_abs=0.0,
    ),
    Question(
        "Fewer failed requests when a storage service turns unavailable",
        "failover-fault",
        ("failover", "errors_during"),
        tie_abs=0.0,
    ),
    Question(
        "Faster back to serving after a kill (s)",
        "failover-kill",
        ("failover", "recovery_s"),
        0.5,
        0.2,
    ),
    Question(
        "Faster back to serving after unavailability (s)",
        "failover-fault",
        ("failover", "recovery_s"),
        0.5,
        0.2,
    ),
    Question(
        "Faster to resume after all were down (s)", "all-down", ("outage", "resume_s"), 0.5, 0.2
    ),
)


def answer(runs: Mapping[str, Result | None], question: Question) -> str:
    """The gateway with the lower figure, `about the same`, or why there is no answer."""
    figures = {g: _get(r, *question.path) for g, r in runs.items() if r is not None}
    figures = {g: v for g, v in figures.items() if isinstance(v, int | float)}
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


def render(
    results: Results, gateways: Sequence[str], meta: Mapping[str, Any], files: Sequence[str]
) -> str:
    lines = [
        f"# Load test comparison: {' vs '.join(gateways)}",
        "",
        f"{meta.get('mode', 'full')} run, started {meta.get('started_at', '?')}, "
        f"{meta.get('duration', '?')} in all. Each scenario ran against each gateway "
        "with identical settings, one gateway at a time, load from "
        f"{meta.get('load generator', 'one locust process')}.",
        "",
        "## Answers",
        "",
        *verdicts(results),
        "",
        "Single runs on a shared machine: small differences are called `about the same`; "
        "rerun before concluding from a close call.",
    ]
    for scenario, runs in results.items():
        lines += ["", f"## {SCENARIO_TITLES.get(scenario, scenario)}", ""]
        rows = _common_rows(runs, gateways)
        if scenario == "steady":
            rows += _share_rows(runs, gateways)
        elif scenario == "all-down":
            rows += _outage_rows(runs, gateways)
        else:
            rows += _failover_rows(runs, gateways)
        lines += _table(gateways, rows)
        errors = [f"- {g}: {r['error']}" for g, r in runs.items() if r and r.get("error")]
        errors += [f"- {g}: {w}" for g, r in runs.items() if r for w in r.get("warnings", [])]
        missing = [f"- {g}: the run produced no result" for g, r in runs.items() if r is None]
        if errors or missing:
            lines += ["", "Problems:", *errors, *missing]
        chart = f"timeline-{scenario}.png"
        if chart in files:
            lines += ["", f"![{scenario} over time]({chart})"]
        if scenario == "steady" and "share.png" in files:
            lines += ["", "![share per storage instance](share.png)"]
    lines += [
        "",
        "## How to read this",
        "",
        *READING_NOTES,
        "",
        "## Settings, versions, machine",
        "",
    ]
    lines += [f"- {key}: {value}" for key, value in meta.items()]
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
    "- requests/s and latency percentiles are locust's own figures (its HTML report has the rest).",
]
