"""Reading wrk's output through the bench's Lua lines."""

import pytest

from bench.wrkout import StatusBucket, WrkOutputError, parse_statuses, parse_summary

# Captured from `wrk -t1 -c4 -d1 --latency -s bench/lua/summary.lua` on this project.
WRK_OUTPUT = """\
Running 1s test @ http://127.0.0.1:18001/data
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   542.28us  185.75us   2.48ms   79.17%
    Req/Sec     7.46k   114.02     7.68k    81.82%
  8154 requests in 1.10s, 5.23MB read
Requests/sec:   7415.11
Transfer/sec:      4.76MB
BENCH_SUMMARY {"requests": 8154, "duration_us": 1099647, "bytes": 5487642, \
"connect_errors": 0, "read_errors": 2, "write_errors": 0, "status_errors": 7, \
"timeout_errors": 1, "p50_us": 500, "p90_us": 814, "p99_us": 1206, "max_us": 2478, \
"mean_us": 542.3}
"""

STATUSES = (
    'BENCH_STATUSES {"bucket_ms": 100, "counts": '
    '{"17955050561/200": 744, "17955050554/503": 3, "17955050554/200": 282}}\n'
)


class TestSummary:
    def test_reads_exact_microseconds_and_counts(self) -> None:
        summary = parse_summary(WRK_OUTPUT)
        assert summary.requests == 8154
        assert (summary.p50_us, summary.p90_us, summary.p99_us, summary.max_us) == (
            500,
            814,
            1206,
            2478,
        )
        assert summary.non_2xx_3xx == 7

    def test_requests_per_second_uses_wrks_measured_duration(self) -> None:
        assert parse_summary(WRK_OUTPUT).requests_per_second == pytest.approx(8154 / 1.099647)

    def test_socket_errors_add_connect_read_write_and_timeouts(self) -> None:
        assert parse_summary(WRK_OUTPUT).socket_errors == 3

    def test_socket_errors_by_kind_lists_only_kinds_that_happened(self) -> None:
        assert parse_summary(WRK_OUTPUT).socket_errors_by_kind() == {"read": 2, "timeout": 1}

    def test_output_without_the_lua_line_is_refused_with_a_reason(self) -> None:
        with pytest.raises(WrkOutputError, match="no BENCH_SUMMARY line"):
            parse_summary(WRK_OUTPUT.split("BENCH_SUMMARY")[0])

    def test_a_summary_missing_a_field_names_it(self) -> None:
        with pytest.raises(WrkOutputError, match="connect_errors"):
            parse_summary('BENCH_SUMMARY {"requests": 1, "duration_us": 1}\n')


class TestStatuses:
    def test_buckets_come_back_oldest_first_with_their_wall_clock_start(self) -> None:
        buckets = parse_statuses(WRK_OUTPUT + STATUSES)
        assert buckets == [
            StatusBucket(1795505055400, 100, 200, 282),
            StatusBucket(1795505055400, 100, 503, 3),
            StatusBucket(1795505056100, 100, 200, 744),
        ]

    def test_no_responses_at_all_is_an_empty_list(self) -> None:
        assert parse_statuses('BENCH_STATUSES {"bucket_ms": 100, "counts": {}}') == []
