"""The --stats-json file and the results folder: typed results survive the trip through JSON."""

import json
from dataclasses import replace
from pathlib import Path

from loadcompare.analysis import BrownOutFigures, Bucket, FailoverFigures, OutageFigures
from loadcompare.plan import Scenario
from loadcompare.results import (
    Comparison,
    Event,
    GatewayView,
    LocustTotals,
    Results,
    RunResult,
)
from loadcompare.tests.factories import META, run_result

TOTALS = LocustTotals(1200, 3, 0.0025, 199.5, p50_ms=4, p95_ms=20, p99_ms=41, max_ms=120.5)
FAILOVER = run_result(
    Scenario.FAILOVER_FAULT,
    TOTALS,
    share={"storage1": 700, "storage3": 497},
    share_max_deviation_pp=33.3,
    status_counts={"200": 1197, "503": 3},
    events=(Event("fault begins", 3.0, "storage2"), Event("fault", 3.1, "storage2")),
    fault_t=3.0,
    recover_t=6.0,
    target_instance="storage2",
    failover=FailoverFigures(600, 3, 0, 0.05, 0.2, 0.2, None, 48.0),
    gateway_view=GatewayView(unavailable_after_s=0.3, available_after_s=None),
    timeline=(Bucket(0.0, 200, 0, 4, 18, {"storage1": 67, "storage2": 67, "storage3": 66}),),
    warnings=("worker w1: reports arrive -2.00 s after they were sent",),
)


class TestStatsJson:
    def test_a_run_reads_back_as_it_was_written(self, tmp_path: Path) -> None:
        path = tmp_path / "figures" / "ours-failover-fault.json"

        FAILOVER.write(path)

        assert RunResult.read(path) == FAILOVER

    def test_keeps_the_names_readers_of_the_file_use(self) -> None:
        data = json.loads(json.dumps(FAILOVER.to_json()))

        assert data["scenario"] == "failover-fault"
        assert data["settings"]["durations"]["fault_s"] == 20.0
        assert data["locust"]["p95_ms"] == 20
        assert data["failover"]["errors_during"] == 3
        assert data["gateway_view"] == {"unavailable_after_s": 0.3, "available_after_s": None}
        assert data["timeline"][0]["by_instance"]["storage3"] == 66
        assert data["events"][1] == {"name": "fault", "t": 3.1, "detail": "storage2"}

    def test_results_written_under_the_old_figure_names_still_load(self) -> None:
        data = FAILOVER.to_json()
        failover = dict(data["failover"])
        failover["recovery_s"] = failover.pop("back_in_rotation_s")
        failover["recovery_s"] = 1.5

        old = RunResult.from_json({**data, "failover": failover})

        assert old.failover is not None
        assert old.failover.back_in_rotation_s == 1.5

    def test_brown_out_figures_read_back_and_older_files_have_none(self) -> None:
        figures = BrownOutFigures(200, 40, 260, 1.3)
        result = replace(FAILOVER, scenario=Scenario.BROWN_OUT, brown_out=figures)

        assert RunResult.from_json(result.to_json()).brown_out == figures
        older = {k: v for k, v in FAILOVER.to_json().items() if k != "brown_out"}
        assert RunResult.from_json(older).brown_out is None

    def test_a_run_without_requests_has_no_percentiles_rather_than_zeros(self) -> None:
        none = LocustTotals(requests=0, failures=0, fail_ratio=0.0, rps=0.0)

        written = run_result(Scenario.STEADY, none).to_json()["locust"]

        assert written == {"requests": 0, "failures": 0, "fail_ratio": 0.0, "rps": 0.0}
        assert LocustTotals.from_json(written).p95_ms is None


class TestResultsFolder:
    def test_a_comparison_reads_back_as_it_was_saved(self, tmp_path: Path) -> None:
        outage = replace(
            FAILOVER,
            scenario=Scenario.ALL_DOWN,
            failover=None,
            gateway_view=None,
            outage=OutageFigures(600, {"503": 600}, 1.5, 9.0, 0.4, 12),
        )
        results: Results = {
            Scenario.FAILOVER_FAULT: {"ours": FAILOVER, "nginx": None},
            Scenario.ALL_DOWN: {"ours": outage, "nginx": outage},
        }
        meta = replace(META, context={"machine": "2 cores, 23.5 GiB", "deployment ours": "x"})

        Comparison(results, meta).save(tmp_path)
        loaded = Comparison.load(tmp_path)

        assert loaded == Comparison(results, meta)
        assert loaded.gateways == ["ours", "nginx"]

    def test_meta_json_states_the_settings_in_the_summarys_order(self, tmp_path: Path) -> None:
        meta = replace(META, context={"machine": "2 cores", "deployment nginx": "y"})

        Comparison({}, meta).save(tmp_path)

        stated = json.loads((tmp_path / "meta.json").read_text())
        assert list(stated) == [
            "mode", "started_at", "duration", "gateways", "load", "load generator", "phases",
            "rerun", "machine", "deployment nginx",
        ]  # fmt: skip
