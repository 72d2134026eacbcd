"""Which runs fail a headless gate, and the phases a failure scenario goes through."""

from dataclasses import replace

from loadcompare.figures import threshold_violations
from loadcompare.options import Settings
from loadcompare.plan import Action, Durations, Scenario, phases, total_s
from loadcompare.results import LocustTotals
from loadcompare.run import Run

STEADY = Settings(
    scenario=Scenario.STEADY,
    target_service="storage2",
    compose_project="",
    durations=Durations(),
    user_rps=10.0,
    max_fail_ratio=0.01,
    max_p95_ms=500.0,
    max_p99_ms=1000.0,
    stats_json="",
)


def totals(requests: int, fail_ratio: float, p95_ms: int, p99_ms: int) -> LocustTotals:
    failures = round(requests * fail_ratio)
    return LocustTotals(requests, failures, fail_ratio, 200.0, 5, p95_ms, p99_ms, p99_ms)


GOOD = totals(1000, 0.0, p95_ms=20, p99_ms=40)


class TestGate:
    def test_a_steady_run_within_thresholds_passes(self) -> None:
        assert threshold_violations(Run(STEADY, "http://127.0.0.1:8000"), GOOD) == []

    def test_a_steady_run_names_every_threshold_it_exceeds(self) -> None:
        exceeded = totals(1000, 0.05, p95_ms=600, p99_ms=900)

        violations = threshold_violations(Run(STEADY, "http://127.0.0.1:8000"), exceeded)

        assert violations == ["fail ratio 0.0500 > 0.01", "p95 600 ms > 500.0 ms"]

    def test_a_steady_run_without_requests_fails(self) -> None:
        none = LocustTotals(requests=0, failures=0, fail_ratio=0.0, rps=0.0)

        assert threshold_violations(Run(STEADY, "http://127.0.0.1:8000"), none) != []

    def test_failure_scenarios_are_not_gated_on_their_failed_requests(self) -> None:
        settings = replace(STEADY, scenario=Scenario.FAILOVER_KILL)
        failing = totals(1000, 0.3, p95_ms=900, p99_ms=3000)

        assert threshold_violations(Run(settings, "http://127.0.0.1:8000"), failing) == []


class TestPhases:
    def test_failure_scenarios_fail_after_warmup_and_recover_after_the_fault(self) -> None:
        plan = phases(Scenario.ALL_DOWN, Durations(warmup_s=3, fault_s=4, recovery_s=5))

        assert [(p.start_s, p.action) for p in plan] == [
            (0.0, Action.NONE),
            (3.0, Action.FAIL),
            (7.0, Action.RECOVER),
        ]
        assert total_s(plan) == 12.0
