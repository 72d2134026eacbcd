"""Reading what wrk prints: the JSON lines our Lua scripts add to its output."""

import json
from dataclasses import dataclass
from typing import Any

SUMMARY_TAG = "BENCH_SUMMARY "
STATUSES_TAG = "BENCH_STATUSES "


class WrkOutputError(ValueError):
    """wrk's output lacks a line the benchmark needs (wrong script, or wrk failed)."""


@dataclass(frozen=True)
class WrkSummary:
    """One wrk run, latencies in microseconds as wrk measured them."""

    requests: int
    duration_us: int
    connect_errors: int
    read_errors: int
    write_errors: int
    timeout_errors: int
    non_2xx_3xx: int
    p50_us: int
    p90_us: int
    p99_us: int
    max_us: int

    @property
    def requests_per_second(self) -> float:
        return self.requests / (self.duration_us / 1e6) if self.duration_us else 0.0

    @property
    def socket_errors(self) -> int:
        return self.connect_errors + self.read_errors + self.write_errors + self.timeout_errors

    def socket_errors_by_kind(self) -> dict[str, int]:
        kinds = {
            "connect": self.connect_errors,
            "read": self.read_errors,
            "write": self.write_errors,
            "timeout": self.timeout_errors,
        }
        return {kind: n for kind, n in kinds.items() if n}


@dataclass(frozen=True)
class StatusBucket:
    """Responses with one status received within one wall-clock bucket."""

    start_ms: int
    width_ms: int
    status: int
    count: int


def _tagged_json(output: str, tag: str) -> dict[str, Any]:
    for line in output.splitlines():
        if line.startswith(tag):
            try:
                value = json.loads(line[len(tag) :])
            except json.JSONDecodeError as error:
                raise WrkOutputError(f"unreadable {tag.strip()} line: {error}") from None
            if not isinstance(value, dict):
                raise WrkOutputError(f"{tag.strip()} is not a JSON object")
            return value
    raise WrkOutputError(f"no {tag.strip()} line in wrk's output (was a bench/lua script used?)")


def parse_summary(output: str) -> WrkSummary:
    """The summary line that `lua/summary.lua` or `lua/statuses.lua` prints when wrk finishes."""
    raw = _tagged_json(output, SUMMARY_TAG)
    try:
        return WrkSummary(
            requests=int(raw["requests"]),
            duration_us=int(raw["duration_us"]),
            connect_errors=int(raw["connect_errors"]),
            read_errors=int(raw["read_errors"]),
            write_errors=int(raw["write_errors"]),
            timeout_errors=int(raw["timeout_errors"]),
            non_2xx_3xx=int(raw["status_errors"]),
            p50_us=int(raw["p50_us"]),
            p90_us=int(raw["p90_us"]),
            p99_us=int(raw["p99_us"]),
            max_us=int(raw["max_us"]),
        )
    except KeyError as missing:
        raise WrkOutputError(f"{SUMMARY_TAG.strip()} lacks {missing}") from None


def parse_statuses(output: str) -> list[StatusBucket]:
    """The per-bucket status counts that `lua/statuses.lua` prints, oldest first."""
    raw = _tagged_json(output, STATUSES_TAG)
    bucket_ms = int(raw["bucket_ms"])
    buckets = []
    for key, count in raw["counts"].items():
        bucket, _, status = key.partition("/")
        buckets.append(StatusBucket(int(bucket) * bucket_ms, bucket_ms, int(status), int(count)))
    return sorted(buckets, key=lambda b: (b.start_ms, b.status))
