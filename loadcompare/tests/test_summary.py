"""The side-by-side summary: both gateways' figures in their own columns, and honest gaps."""

from dataclasses import replace

from loadcompare.analysis import BrownOutFigures, FailoverFigures
from loadcompare.plan import Scenario
from loadcompare.results import Comparison, GatewayView, LocustTotals, Results, RunResult
from loadcompare.summary import render, verdicts
from loadcompare.tests.factories import META, run_result


def steady(rps: float, p95: int, counts: dict[str, int], deviation: float) -> RunResult:
    locust = LocustTotals(requests=sum(counts.values()), failures=0, fail_ratio=0.0, rps=rps,
                          p50_ms=3, p95_ms=p95, p99_ms=20)  # fmt: skip
    return run_result(Scenario.STEADY, locust, share=counts, share_max_deviation_pp=deviation)


def kill(errors: int, recovery: float | None) -> RunResult:
    locust = LocustTotals(requests=1000, failures=errors, fail_ratio=errors / 1000, rps=200.0)
    failover = FailoverFigures(
        requests_during=400, errors_during=errors, errors_after=0, last_from_target_s=None,
        last_error_s=None, detection_s=0.25, back_in_rotation_s=recovery, p99_during_ms=40.0,
    )  # fmt: skip
    view = GatewayView(unavailable_after_s=2.1, available_after_s=None)
    return run_result(Scenario.FAILOVER_KILL, locust, failover=failover, gateway_view=view)


RESULTS: Results = {
    Scenario.STEADY: {
        "ours": steady(201.5, 9, {"storage1": 400, "storage2": 400, "storage3": 400}, 0.0),
        "nginx": steady(202.0, 4, {"storage1": 500, "storage2": 400, "storage3": 300}, 8.3),
    },
    Scenario.FAILOVER_KILL: {"ours": kill(0, 4.5), "nginx": kill(7, None)},
    Scenario.ALL_DOWN: {"ours": None, "nginx": None},
}


def table_row(summary: str, label: str) -> list[str]:
    line = next(line for line in summary.splitlines() if line.startswith(f"| {label} |"))
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


class TestRender:
    summary = render(Comparison(RESULTS, replace(META, mode="short")), ["share.png"])

    def test_each_gateway_has_its_own_column_in_gateway_order(self) -> None:
        assert "| | ours | nginx |" in self.summary
        assert table_row(self.summary, "requests/s") == ["201.5", "202.0"]
        assert table_row(self.summary, "share storage1") == ["33.3% (400)", "41.7% (500)"]
        assert table_row(self.summary, "max deviation from even share") == ["0.0 pp", "8.3 pp"]

    def test_failover_figures_show_missing_values_as_missing_not_zero(self) -> None:
        assert table_row(self.summary, "failed requests while down") == ["0", "7"]
        row = table_row(self.summary, "recovery time (first answer from it again)")
        assert row == ["4.50 s", "n/a"]

    def test_a_scenario_without_results_says_so(self) -> None:
        assert table_row(self.summary, "requests/s")  # the steady table exists
        assert "- ours: the run produced no result" in self.summary
        assert "- nginx: the run produced no result" in self.summary

    def test_settings_are_stated(self) -> None:
        assert "- mode: short" in self.summary

    def test_says_how_the_load_was_generated(self) -> None:
        meta = replace(META, load_generator="a locust master and 2 worker processes")

        summary = render(Comparison(RESULTS, meta), [])

        assert "load from a locust master and 2 worker processes." in summary


class TestVerdicts:
    def test_names_the_gateway_with_the_better_figure(self) -> None:
        lines = verdicts(RESULTS)

        evenness = next(line for line in lines if line.startswith("- Spreads steady load"))
        failures = next(line for line in lines if "storage container is killed" in line)
        assert evenness.endswith("**ours** (ours 0.00 vs nginx 8.30)")
        assert "**ours**" in failures

    def test_calls_a_difference_within_noise_a_tie(self) -> None:
        close: Results = {
            Scenario.STEADY: {
                "ours": steady(200.0, 40, {"a": 1}, 0.02),
                "nginx": steady(200.0, 41, {"a": 1}, 0.01),
            }
        }

        lines = verdicts(close)

        assert all("about the same" in line for line in lines), lines

    def test_no_winner_when_a_figure_is_missing(self) -> None:
        lines = verdicts(RESULTS)

        recovery = next(
            line for line in lines if line.startswith("- Faster back to serving after a kill")
        )
        assert "**" not in recovery
        assert "a figure is missing" in recovery


def test_a_brown_out_shows_requests_reaching_storage_per_client_request() -> None:
    locust = LocustTotals(requests=300, failures=40, fail_ratio=0.13, rps=100.0)

    def run(per_request: float) -> RunResult:
        figures = BrownOutFigures(200, 40, int(200 * per_request), per_request)
        return run_result(Scenario.BROWN_OUT, locust, brown_out=figures)

    results: Results = {Scenario.BROWN_OUT: {"ours": run(1.2), "nginx": run(1.75)}}
    summary = render(Comparison(results, META), [])

    row = table_row(summary, "requests reaching storage per client request")
    assert row == ["1.20", "1.75"]
    assert (
        "- Fewer requests reaching storage per client request in a brown-out: **ours**" in summary
    )
