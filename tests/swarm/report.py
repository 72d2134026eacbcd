"""The side-by-side table of both gateways' scenario results, for the terminal and summary.md."""

from tests.swarm.scenario import ScenarioResult
from toolkit.tables import markdown_table


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def table(results: list[ScenarioResult]) -> str:
    """Markdown: one column per gateway, one row per figure."""
    rows: list[tuple[str, list[str]]] = [
        ("requests", [str(len(r.outcomes)) for r in results]),
        ("failed requests", [str(len(r.failed)) for r in results]),
        ("max time until a new replica served", [_seconds(r.max_time_to_serve) for r in results]),
        (
            "new replicas not serving in time",
            [f"{r.never_served} of {len(r.times_to_serve())}" for r in results],
        ),
        (
            "requests per replica (steady, 3 replicas)",
            [" / ".join(str(n) for n in sorted(r.steady.values(), reverse=True)) for r in results],
        ),
        ("nginx reloads", ["-" if r.reloads is None else str(r.reloads) for r in results]),
    ]
    header = ["", *(r.gateway for r in results)]
    return "\n".join(markdown_table(header, ([name, *cells] for name, cells in rows)))


def steps(results: list[ScenarioResult]) -> str:
    """Per step and gateway: how long it took, and each new replica's time until it served."""
    rows = []
    names = [step.name for step in results[0].steps] if results else []
    for index, name in enumerate(names):
        cells = []
        for result in results:
            if index >= len(result.steps):
                cells.append("not run")
                continue
            step = result.steps[index]
            served = ", ".join(_seconds(t) for t in step.new_replicas.values()) or "no new replica"
            cells.append(
                f"{step.seconds:.0f} s, {result.failed_during(step)} failed;"
                f" new replicas served after: {served}"
            )
        rows.append([name, *cells])
    return "\n".join(markdown_table(["step", *(r.gateway for r in results)], rows))


def failures(result: ScenarioResult, limit: int = 10) -> str:
    """The first failed requests of one run, one line each."""
    shown = [f"  status {o.status} at {o.at:.3f}: {o.error}" for o in result.failed[:limit]]
    more = len(result.failed) - limit
    return "\n".join(shown + ([f"  ... and {more} more"] if more > 0 else []))
