"""Splitting a recovery run's status buckets at the moments the bench broke and fixed things."""

import pytest

from bench.failover import after_recovery_figures, split_recovery
from bench.wrkout import StatusBucket


def bucket(start_ms: int, status: int, count: int = 1) -> StatusBucket:
    return StatusBucket(start_ms, 100, status, count)


BUCKETS = [
    bucket(900, 200, 50),  # before the stop
    bucket(1000, 503, 40),  # outage
    bucket(1900, 503, 40),  # straddles the recovery at 1950: counted as outage
    bucket(2000, 503, 30),  # after recovery, still refused
    bucket(2600, 200, 5),
    bucket(2600, 503, 2),
    bucket(2700, 200, 60),
    bucket(5000, 200, 9),  # after the end of the window
]


def test_outage_and_after_recovery_do_not_overlap() -> None:
    during, after = split_recovery(BUCKETS, stop_ms=1000, recovered_ms=1950, end_ms=3000)
    assert during == [bucket(1000, 503, 40), bucket(1900, 503, 40)]
    assert after == [bucket(2000, 503, 30), *BUCKETS[4:7]]


def test_first_success_and_last_error_are_seconds_after_recovery() -> None:
    _, after = split_recovery(BUCKETS, stop_ms=1000, recovered_ms=2000, end_ms=3000)
    figures = after_recovery_figures(after, recovered_ms=2000)
    assert figures.first_2xx_after_s == pytest.approx(0.6)
    # The last error bucket starts at 2600 and ends at 2700: an upper bound.
    assert figures.last_error_after_s == pytest.approx(0.7)
    assert figures.errors_after == 32


def test_a_gateway_that_never_errs_after_recovery_has_no_last_error() -> None:
    figures = after_recovery_figures([bucket(2000, 200, 10)], recovered_ms=2000)
    assert (figures.first_2xx_after_s, figures.last_error_after_s) == (0.0, None)
    assert figures.errors_after == 0
