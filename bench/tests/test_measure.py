"""Rounds, medians and added latency, from samples (no processes)."""

from bench.measure import Sample, added, medians, round_order


def sample(p50_1: float, cpu: float = 30.0) -> Sample:
    return Sample(
        requests_per_s=1000.0,
        p50_us_n=900.0,
        p99_us_n=2000.0,
        cpu_us_per_request=cpu,
        p50_us_1=p50_1,
        p99_us_1=400.0,
        errors=0,
    )


def test_each_target_leads_one_round_in_turn() -> None:
    names = ["direct", "gateway", "nginx"]
    assert [round_order(names, r)[0] for r in range(4)] == ["direct", "gateway", "nginx", "direct"]


def test_medians_ignore_one_outlying_round() -> None:
    runs = {"nginx": [sample(200, cpu=28), sample(210, cpu=500), sample(190, cpu=27)]}
    assert medians(runs)["nginx"]["cpu_us_per_request"] == 28


def test_added_latency_pairs_each_round_with_direct_in_the_same_round() -> None:
    # Round 2 ran on a slower machine state: pairing by round keeps that out of the difference.
    runs = {
        "direct": [sample(100), sample(300), sample(110)],
        "nginx": [sample(180), sample(380), sample(200)],
    }
    assert added(runs) == {"nginx": 80}


def test_without_direct_there_is_no_added_latency() -> None:
    assert added({"nginx": [sample(180)]}) == {}
