"""Results made by hand for the tests: a run with nothing in it, to fill in with `replace`."""

from dataclasses import replace
from typing import Any

from loadcompare.plan import Durations, Scenario
from loadcompare.results import ComparisonMeta, LocustTotals, RunResult, RunSettings

SETTINGS = RunSettings(
    users=20,
    spawn_rate=20.0,
    workers=0,
    user_rps=10.0,
    durations=Durations(),
    target_service="storage2",
    compose_project="service-assembly",
)

META = ComparisonMeta(
    mode="full",
    started_at="2026-11-25T07:15:00+00:00",
    duration="80 s",
    gateways="ours http://127.0.0.1:8000, nginx http://127.0.0.1:8080",
    load="20 users, spawn rate 20.0/s, 10.0 requests/s per user (0: unpaced), GET /data",
    load_generator="locust's local runner (one process)",
    phases="steady 5 s; failure scenarios: warm-up 3 s, down 3 s, recovery 4 s",
    rerun="python -m loadtests --short",
)


def run_result(scenario: Scenario, locust: LocustTotals, **figures: Any) -> RunResult:
    """A run of `scenario` with locust's totals and the `figures` given; nothing else happened."""
    empty = RunResult(
        scenario=scenario,
        host="http://127.0.0.1:8000",
        started_at="2026-11-25T07:15:00+00:00",
        duration_s=10.0,
        settings=SETTINGS,
        locust=locust,
        expected_instances=3,
        share={},
        share_max_deviation_pp=None,
        status_counts={},
        events=(),
        fault_t=None,
        recover_t=None,
        target_instance=None,
        failover=None,
        outage=None,
        gateway_view=None,
        timeline=(),
        violations=(),
        warnings=(),
        error=None,
    )
    return replace(empty, **figures)
