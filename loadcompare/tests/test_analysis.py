"""Share, timeline, failover and outage figures, computed from hand-made responses."""

import pytest

from loadcompare.analysis import (
    Sample,
    brown_out,
    failover,
    max_deviation_pp,
    outage,
    percentile,
    share,
    timeline,
)


def ok(t: float, instance: str, latency_ms: float = 5.0) -> Sample:
    return Sample(t=t, latency_ms=latency_ms, status=200, instance=instance, ok=True)


def failed(t: float, status: int = 502, latency_ms: float = 5.0) -> Sample:
    return Sample(t=t, latency_ms=latency_ms, status=status, instance=None, ok=False)


class TestShare:
    def test_counts_only_successful_answers_per_instance_largest_first(self) -> None:
        samples = [ok(0.1, "b"), ok(0.2, "a"), ok(0.3, "b"), failed(0.4)]
        samples.append(Sample(0.5, 5.0, 503, "a", ok=False))  # a 503 naming its instance

        assert list(share(samples).items()) == [("b", 2), ("a", 1)]

    def test_an_even_split_deviates_by_nothing(self) -> None:
        assert max_deviation_pp({"a": 100, "b": 100, "c": 100}, expected_instances=3) == 0.0

    def test_deviation_is_the_largest_gap_in_percentage_points(self) -> None:
        deviation = max_deviation_pp({"a": 50, "b": 30, "c": 20}, expected_instances=3)

        assert deviation == pytest.approx(50.0 - 100.0 / 3)

    def test_an_instance_that_served_nothing_counts_as_a_whole_even_share_missing(self) -> None:
        deviation = max_deviation_pp({"a": 100, "b": 100}, expected_instances=3)

        assert deviation == pytest.approx(100.0 / 3)  # the silent one is 33.3 pp below even

    def test_no_answers_means_no_figure(self) -> None:
        assert max_deviation_pp({}, expected_instances=3) is None


class TestTimeline:
    def test_buckets_per_second_including_empty_seconds(self) -> None:
        samples = [ok(0.2, "a", 4.0), ok(0.7, "b", 8.0), failed(2.5)]

        buckets = timeline(samples)

        assert [(b.t, b.requests, b.failures) for b in buckets] == [(0, 2, 0), (1, 0, 0), (2, 1, 1)]
        assert buckets[0].by_instance == {"a": 1, "b": 1}
        assert buckets[1].p50_ms is None

    def test_percentile_is_nearest_rank(self) -> None:
        assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0
        assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.99) == 5.0
        assert percentile([], 0.5) is None


class TestFailover:
    def samples(self) -> list[Sample]:
        before = [ok(t / 10, name) for t, name in enumerate(["a", "b", "c"] * 3)]  # 0.0 .. 0.8
        during = [ok(10.1, "b"), failed(10.4), ok(10.5, "a"), ok(12.0, "c")]
        after = [ok(20.5, "a"), failed(21.0), ok(23.5, "b"), ok(24.0, "b")]
        return before + during + after

    def test_counts_failures_inside_and_after_the_window_separately(self) -> None:
        figures = failover(self.samples(), fault_t=10.0, recover_t=20.0, target_instance="b")

        assert figures.requests_during == 4
        assert figures.errors_during == 1
        assert figures.errors_after == 1

    def test_detection_is_the_later_of_last_error_and_last_answer_from_the_target(self) -> None:
        figures = failover(self.samples(), fault_t=10.0, recover_t=20.0, target_instance="b")

        assert figures.last_from_target_s == pytest.approx(0.1)
        assert figures.last_error_s == pytest.approx(0.4)
        assert figures.detection_s == pytest.approx(0.4)

    def test_recovery_is_the_first_answer_from_the_target_after_it_came_back(self) -> None:
        figures = failover(self.samples(), fault_t=10.0, recover_t=20.0, target_instance="b")

        assert figures.back_in_rotation_s == pytest.approx(3.5)

    def test_a_fault_the_gateway_hid_completely_has_zero_detection(self) -> None:
        samples = [ok(10.5, "a"), ok(11.0, "c"), ok(21.0, "b")]

        figures = failover(samples, fault_t=10.0, recover_t=20.0, target_instance="b")

        assert figures.errors_during == 0
        assert figures.detection_s == 0.0

    def test_a_target_that_never_served_again_has_no_recovery_time(self) -> None:
        samples = [ok(10.5, "a"), ok(21.0, "a")]

        figures = failover(samples, fault_t=10.0, recover_t=20.0, target_instance="b")

        assert figures.back_in_rotation_s is None


class TestOutage:
    def test_reports_status_codes_503_latency_and_when_200s_resumed(self) -> None:
        samples = [
            ok(1.0, "a"),
            failed(5.1, 503, latency_ms=2.0),
            failed(5.2, 503, latency_ms=4.0),
            failed(5.3, 503, latency_ms=9.0),
            Sample(6.0, 1000.0, 0, None, ok=False),  # no HTTP response at all
            failed(10.5, 503),
            ok(11.25, "b"),
        ]

        figures = outage(samples, fault_t=5.0, recover_t=10.0)

        assert figures.status_during == {"503": 3, "no response": 1}
        assert figures.latency_503_p50_ms == 4.0
        assert figures.latency_503_max_ms == 9.0
        assert figures.first_2xx_after_s == pytest.approx(1.25)
        assert figures.errors_after == 1

    def test_service_that_never_resumed_has_no_resume_time(self) -> None:
        figures = outage([failed(5.5, 503), failed(11.0, 503)], fault_t=5.0, recover_t=10.0)

        assert figures.first_2xx_after_s is None


class TestBrownOut:
    def test_storage_requests_per_client_request_in_the_window(self) -> None:
        samples = [ok(1.0, "a"), ok(5.5, "a"), failed(6.0, 503), ok(7.0, "b"), ok(8.0, "c"),
                   ok(12.0, "a")]  # fmt: skip

        figures = brown_out(samples, fault_t=5.0, recover_t=10.0, storage_requests=6)

        assert figures.requests_during == 4
        assert figures.errors_during == 1
        assert figures.per_request == pytest.approx(1.5)

    def test_no_client_request_meanwhile_means_no_figure(self) -> None:
        assert brown_out([ok(1.0, "a")], 5.0, 10.0, storage_requests=3).per_request is None
