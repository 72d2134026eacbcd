"""A run's figures, from what it recorded and locust's totals (what --stats-json writes)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from loadcompare.analysis import brown_out, failover, max_deviation_pp, outage, share, timeline
from loadcompare.plan import Scenario
from loadcompare.results import GatewayView, LocustTotals, RunResult, RunSettings
from loadcompare.run import Run


def locust_totals(total: Any) -> LocustTotals:
    """Locust's own aggregated figures (the same numbers its HTML report shows)."""
    if not total.num_requests:
        return LocustTotals(requests=0, failures=0, fail_ratio=0.0, rps=0.0)
    return LocustTotals(
        requests=total.num_requests,
        failures=total.num_failures,
        fail_ratio=total.fail_ratio,
        rps=total.total_rps,
        p50_ms=total.get_response_time_percentile(0.50),
        p95_ms=total.get_response_time_percentile(0.95),
        p99_ms=total.get_response_time_percentile(0.99),
        max_ms=total.max_response_time,
    )


def threshold_violations(run: Run, totals: LocustTotals) -> list[str]:
    """Why a steady run fails its gate; the failure scenarios fail by design and are not gated."""
    s = run.settings
    if s.scenario is not Scenario.STEADY:
        return []
    if not totals.requests:
        return ["no requests were made"]
    violations = []
    if totals.fail_ratio > s.max_fail_ratio:
        violations.append(f"fail ratio {totals.fail_ratio:.4f} > {s.max_fail_ratio}")
    if totals.p95_ms is not None and totals.p95_ms > s.max_p95_ms:
        violations.append(f"p95 {totals.p95_ms} ms > {s.max_p95_ms} ms")
    if totals.p99_ms is not None and totals.p99_ms > s.max_p99_ms:
        violations.append(f"p99 {totals.p99_ms} ms > {s.max_p99_ms} ms")
    return violations


def gateway_view(run: Run, fault_t: float, recover_t: float) -> GatewayView:
    """When the gateway's `/status` marked the target down, then up again (seconds after)."""

    def first(state: str, after: float) -> float | None:
        times = [e.t for e in run.events if e.name == f"gateway says {state}" and e.t >= after]
        return min(times) - after if times else None

    return GatewayView(
        unavailable_after_s=first("unavailable", fault_t),
        available_after_s=first("available", recover_t),
    )


def build(
    run: Run,
    total: Any,
    users: int,
    spawn_rate: float,
    workers: int = 0,
    warnings: Sequence[str] = (),
) -> RunResult:
    """`workers`: how many locust workers ran the users (0: the local runner did)."""
    s = run.settings
    totals = locust_totals(total)
    counts = share(run.samples)
    # Windows open when an action begins: the fault takes effect somewhere within the action
    # (a docker exec or kill takes ~0.1 s), so starting there never hides an early failure.
    # An action counts only if it completed.
    fault_t = run.event_time("fault begins") if run.event_time("fault") is not None else None
    recover_t = (
        run.event_time("recovery begins") if run.event_time("recovered") is not None else None
    )
    failover_figures = outage_figures = view = brown_out_figures = None
    error = run.error
    if fault_t is not None and recover_t is not None:
        if s.scenario is Scenario.ALL_DOWN:
            outage_figures = outage(run.samples, fault_t, recover_t)
        elif s.scenario is Scenario.BROWN_OUT:
            if run.storage_requests is not None:
                brown_out_figures = brown_out(run.samples, fault_t, recover_t, run.storage_requests)
        elif run.target_instance is not None:
            failover_figures = failover(run.samples, fault_t, recover_t, run.target_instance)
            view = gateway_view(run, fault_t, recover_t)
    elif s.scenario is not Scenario.STEADY and error is None:
        error = "the run ended before the fault and the recovery both happened"
    return RunResult(
        scenario=s.scenario,
        host=run.host,
        started_at=datetime.fromtimestamp(run.started_wall, UTC).isoformat(timespec="seconds"),
        duration_s=round(run.now(), 2),
        settings=RunSettings(
            users=users,
            spawn_rate=spawn_rate,
            workers=workers,
            user_rps=s.user_rps,
            durations=s.durations,
            target_service=s.target_service,
            compose_project=run.project,
        ),
        locust=totals,
        expected_instances=run.expected_instances,
        share=counts,
        share_max_deviation_pp=max_deviation_pp(counts, run.expected_instances),
        status_counts=dict(sorted(Counter(str(x.status) for x in run.samples).items())),
        events=tuple(run.events),
        fault_t=fault_t,
        recover_t=recover_t,
        target_instance=run.target_instance,
        failover=failover_figures,
        outage=outage_figures,
        brown_out=brown_out_figures,
        gateway_view=view,
        timeline=tuple(timeline(run.samples)),
        violations=tuple(threshold_violations(run, totals)),
        warnings=tuple(warnings),
        error=error,
    )


def share_table(result: RunResult) -> str:
    """The per-service share as printed at the end of a run."""
    counts = result.share
    total = sum(counts.values())
    lines = [f"Share per storage instance ({result.scenario}, {total} successful responses):"]
    if not total:
        return "\n".join([*lines, f"  none: does a gateway answer at {result.host}?"])
    for instance, count in counts.items():
        lines.append(f"  {instance:<20} {count:>8}  {100.0 * count / total:5.1f}%")
    missing = result.expected_instances - len(counts)
    if missing > 0:
        lines.append(f"  ({missing} of {result.expected_instances} instances served nothing)")
    deviation = result.share_max_deviation_pp
    if deviation is not None:
        lines.append(f"  max deviation from an even share: {deviation:.1f} percentage points")
    return "\n".join(lines)
