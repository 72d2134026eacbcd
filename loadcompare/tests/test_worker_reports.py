"""Distributed runs: workers' reports reach the master whole and merge into the local figures."""

from dataclasses import asdict

import msgpack  # locust's wire encoding
import pytest

from loadcompare.analysis import Sample, failover, share, timeline
from loadcompare.worker_reports import Collector, SampleBuffer, WorkerReport

START = 1_700_000_000.0  # the master's wall clock when the run started


def ok(t: float, instance: str, latency_ms: float = 5.0) -> Sample:
    return Sample(t=t, latency_ms=latency_ms, status=200, instance=instance, ok=True)


def failed(t: float, status: int = 502) -> Sample:
    return Sample(t=t, latency_ms=5.0, status=status, instance=None, ok=False)


def on_wall_clock(samples: list[Sample]) -> tuple[Sample, ...]:
    """The same responses as a worker records them: times on its wall clock."""
    return tuple(Sample(START + s.t, s.latency_ms, s.status, s.instance, s.ok) for s in samples)


# What a local run records for one failover: storage2 down from 10 s to 20 s.
LOCAL_RUN = [
    *(ok(t / 10, f"storage{t % 3 + 1}") for t in range(90)),
    ok(10.05, "storage2"),
    failed(10.2),
    *(ok(10.5 + t / 10, f"storage{1 + 2 * (t % 2)}") for t in range(90)),
    *(ok(20.0 + t / 10, f"storage{t % 3 + 1}") for t in range(30)),
]


class TestWorkerReport:
    def test_survives_locusts_message_encoding_unchanged(self) -> None:
        report = WorkerReport(
            (ok(START + 1.25, "storage1", 3.5), failed(START + 2.0, status=0)), START + 3.0, "abc"
        )

        wire = msgpack.loads(msgpack.dumps(report.encode()), raw=False)

        assert WorkerReport.decode(wire) == report

    def test_anything_else_is_refused_with_one_line(self) -> None:
        with pytest.raises(ValueError, match="not a load test worker report") as error:
            WorkerReport.decode({"samples": [[1.0, "fast"]], "sent_at": 2.0, "final_for": None})

        assert "\n" not in str(error.value)


class TestSampleBuffer:
    def test_each_report_holds_what_was_recorded_since_the_previous_one(self) -> None:
        clock = iter([START + 1.0, START + 2.0, START + 3.0, START + 4.0])
        buffer = SampleBuffer(clock=lambda: next(clock))
        buffer.record(4.0, 200, "storage1", True)
        buffer.record(5.0, 503, None, False)

        first = buffer.report()
        second = buffer.report(final_for="last")

        assert first.samples == (ok(START + 1.0, "storage1", 4.0), failed(START + 2.0, 503))
        assert first.sent_at == START + 3.0
        assert (second.samples, second.final_for) == ((), "last")


class TestCollector:
    def merged(self, parts: list[tuple[str, list[Sample]]]) -> Collector:
        collector = Collector()
        for worker, samples in parts:
            wall = on_wall_clock(samples)
            collector.add(worker, WorkerReport(wall, max(s.t for s in wall)), START + 30.0)
        return collector

    def test_two_workers_reports_give_the_figures_one_local_process_would(self) -> None:
        # Each worker got every other user; each reported in two batches.
        a, b = LOCAL_RUN[0::2], LOCAL_RUN[1::2]
        collector = self.merged([("w1", a[:50]), ("w2", b[:70]), ("w1", a[50:]), ("w2", b[70:])])

        samples = collector.samples(START)

        assert [s.t for s in samples] == pytest.approx([s.t for s in LOCAL_RUN])
        assert share(samples) == share(LOCAL_RUN)
        merged_figures = asdict(failover(samples, 10.0, 20.0, "storage2"))
        assert merged_figures == pytest.approx(asdict(failover(LOCAL_RUN, 10.0, 20.0, "storage2")))
        assert [b.by_instance for b in timeline(samples)] == [
            b.by_instance for b in timeline(LOCAL_RUN)
        ]

    def test_leaves_out_responses_from_before_the_run_started(self) -> None:
        collector = self.merged([("w1", [ok(-0.5, "storage1"), ok(0.5, "storage2")])])

        assert collector.samples(START) == [ok(0.5, "storage2")]

    def test_a_worker_is_missing_until_it_answers_this_final_request(self) -> None:
        collector = Collector()
        collector.add("w1", WorkerReport((), START + 1.0), START + 1.0)
        collector.add("w2", WorkerReport((), START + 1.0, final_for="earlier"), START + 1.0)
        collector.add("w3", WorkerReport((), START + 1.0, final_for="now"), START + 1.0)

        assert collector.missing(["w1", "w2", "w3"], "now") == ["w1", "w2"]
        assert collector.missing(["w3"], "now") == []

    def test_names_a_worker_whose_clock_disagrees_with_the_masters(self) -> None:
        collector = Collector()
        collector.add("in-sync", WorkerReport((), START + 1.0), START + 1.01)
        collector.add("ahead", WorkerReport((), START + 3.0), START + 1.0)
        collector.add("ahead", WorkerReport((), START + 4.0), START + 2.5)  # late: hides nothing

        warnings = collector.clock_warnings()

        assert len(warnings) == 1
        assert warnings[0].startswith("worker ahead: reports arrive -2.00 s after")
