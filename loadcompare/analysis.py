"""Pure figures computed from the responses one run recorded: share, timeline, failover, outage.

Nothing here touches the network or locust, so the unit tests cover it without Docker.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from toolkit.recovery import Answer, after_recovery


@dataclass(frozen=True, slots=True)
class Sample:
    """One answered (or failed) request, as the client saw it."""

    t: float  # seconds since the run started, taken when the response was complete
    latency_ms: float
    status: int  # 0 when no HTTP response arrived (connection refused, reset, timeout)
    instance: str | None  # the body's `instance`, when the body had one
    ok: bool  # status 200 and a body naming an instance


@dataclass(frozen=True, slots=True)
class Bucket:
    """All responses that completed within one second of the run."""

    t: float
    requests: int
    failures: int
    p50_ms: float | None
    p95_ms: float | None
    by_instance: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FailoverFigures:
    """What clients saw while one storage service was down, and after it came back."""

    requests_during: int
    errors_during: int
    errors_after: int
    last_from_target_s: float | None  # last response naming the failed service, after the fault
    last_error_s: float | None  # last failed request between fault and recovery
    detection_s: float  # the later of the two above: when clients stopped noticing the fault
    back_in_rotation_s: float | None  # toolkit/recovery.py's vocabulary
    p99_during_ms: float | None


@dataclass(frozen=True, slots=True)
class OutageFigures:
    """What clients saw while every storage service was down, and how long until 200s resumed."""

    requests_during: int
    status_during: dict[str, int]
    latency_503_p50_ms: float | None
    latency_503_max_ms: float | None
    first_2xx_after_s: float | None  # toolkit/recovery.py's vocabulary
    errors_after: int


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile; None for no values (a figure that does not exist is not 0)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def share(samples: Iterable[Sample]) -> dict[str, int]:
    """Successful responses per storage instance, largest first."""
    counts = Counter(s.instance for s in samples if s.ok and s.instance is not None)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def max_deviation_pp(counts: Mapping[str, int], expected_instances: int) -> float | None:
    """Largest distance, in percentage points, between any instance's share and an even split.

    Instances that served nothing count too: `expected_instances` says how many should have served,
    so a service that never answered shows up as a deviation of a whole even share.
    """
    total = sum(counts.values())
    n = max(expected_instances, len(counts))
    if total == 0 or n == 0:
        return None
    even = 100.0 / n
    shares = [100.0 * c / total for c in counts.values()]
    shares += [0.0] * (n - len(counts))
    return max(abs(s - even) for s in shares)


def timeline(samples: Iterable[Sample], bucket_s: float = 1.0) -> list[Bucket]:
    """Per-second throughput, failures, latency and share, for the charts."""
    grouped: dict[int, list[Sample]] = {}
    for s in samples:
        grouped.setdefault(int(s.t // bucket_s), []).append(s)
    if not grouped:
        return []
    buckets = []
    for index in range(min(grouped), max(grouped) + 1):
        group = grouped.get(index, [])
        latencies = [s.latency_ms for s in group]
        buckets.append(
            Bucket(
                t=index * bucket_s,
                requests=len(group),
                failures=sum(1 for s in group if not s.ok),
                p50_ms=percentile(latencies, 0.50),
                p95_ms=percentile(latencies, 0.95),
                by_instance=share(group),
            )
        )
    return buckets


def failover(
    samples: Sequence[Sample], fault_t: float, recover_t: float, target_instance: str
) -> FailoverFigures:
    """Figures for one service failing at `fault_t` and being brought back at `recover_t`.

    The client cannot see inside the gateway, so "the gateway stopped sending to the failed
    service" is read off the responses: the last one that still named the service (it was in flight
    or the service still answered errors) or that failed, whichever came later.
    """
    during = [s for s in samples if fault_t <= s.t < recover_t]
    after = [s for s in samples if s.t >= recover_t]
    from_target = [s.t for s in during if s.instance == target_instance]
    errors = [s.t for s in during if not s.ok]
    last_from_target = max(from_target) - fault_t if from_target else None
    last_error = max(errors) - fault_t if errors else None
    recovered = after_recovery(_answers(after), recover_t, failed_instance=target_instance)
    return FailoverFigures(
        requests_during=len(during),
        errors_during=len(errors),
        errors_after=recovered.errors_after,
        last_from_target_s=last_from_target,
        last_error_s=last_error,
        detection_s=max(last_from_target or 0.0, last_error or 0.0),
        back_in_rotation_s=recovered.back_in_rotation_s,
        p99_during_ms=percentile([s.latency_ms for s in during], 0.99),
    )


def outage(samples: Sequence[Sample], fault_t: float, recover_t: float) -> OutageFigures:
    """Figures for every storage service failing at `fault_t` and coming back at `recover_t`."""
    during = [s for s in samples if fault_t <= s.t < recover_t]
    after = [s for s in samples if s.t >= recover_t]
    statuses = Counter(str(s.status) if s.status else "no response" for s in during)
    latencies_503 = [s.latency_ms for s in during if s.status == 503]
    recovered = after_recovery(_answers(after), recover_t)
    return OutageFigures(
        requests_during=len(during),
        status_during=dict(sorted(statuses.items())),
        latency_503_p50_ms=percentile(latencies_503, 0.50),
        latency_503_max_ms=max(latencies_503) if latencies_503 else None,
        first_2xx_after_s=recovered.first_2xx_after_s,
        errors_after=recovered.errors_after,
    )


@dataclass(frozen=True, slots=True)
class BrownOutFigures:
    """What a brown-out of every storage service (slow, failing half) cost clients and storage."""

    requests_during: int
    errors_during: int
    storage_requests: int  # `/data` requests the storage services received meanwhile
    per_request: float | None  # storage requests per client request: 1 + the retries' share


def brown_out(
    samples: Sequence[Sample], fault_t: float, recover_t: float, storage_requests: int
) -> BrownOutFigures:
    """Figures for every storage service browned out from `fault_t` to `recover_t`, given the
    `/data` requests they counted over the same window."""
    during = [s for s in samples if fault_t <= s.t < recover_t]
    return BrownOutFigures(
        requests_during=len(during),
        errors_during=sum(1 for s in during if not s.ok),
        storage_requests=storage_requests,
        per_request=storage_requests / len(during) if during else None,
    )


def _answers(samples: Sequence[Sample]) -> list[Answer]:
    return [Answer(t=s.t, ok=s.ok, instance=s.instance) for s in samples]
