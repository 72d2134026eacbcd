"""Prometheus metrics, read from the gateway's own counters at scrape time.

The hot path only bumps plain ints (see `Backend.observe`); this collector turns them into
metric families when /metrics is scraped, so metrics cost nothing per request beyond that.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from gateway_service.backends import LATENCY_BUCKETS, Balancer
from gateway_service.clock import Clock


@dataclass(slots=True)
class ProxyStats:
    """Counters of what clients saw."""

    responses: dict[int, int] = field(default_factory=dict)  # status code -> count
    retries: int = 0

    def count_response(self, status: int) -> None:
        self.responses[status] = self.responses.get(status, 0) + 1


class GatewayCollector(Collector):
    def __init__(self, balancer: Balancer, stats: ProxyStats, clock: Clock) -> None:
        self.balancer = balancer
        self.stats = stats
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        backends = self.balancer.backends
        now = self.clock()

        responses = CounterMetricFamily(
            "gateway_responses", "Responses to clients of /data, by status code.", labels=["code"]
        )
        for code, count in sorted(self.stats.responses.items()):
            responses.add_metric([str(code)], count)
        yield responses

        yield CounterMetricFamily(
            "gateway_retries",
            "Attempts on a further backend within one request.",
            value=self.stats.retries,
        )

        attempts = CounterMetricFamily(
            "gateway_upstream_requests",
            "Attempts to reach a storage service, by backend and outcome.",
            labels=["backend", "address", "outcome"],
        )
        latency = HistogramMetricFamily(
            "gateway_upstream_latency_seconds",
            "Time from sending a request to a storage service until its response or failure.",
            labels=["backend", "address"],
        )
        up = GaugeMetricFamily(
            "gateway_backend_up",
            "1 while the backend is in rotation.",
            labels=["backend", "address"],
        )
        for backend in backends:
            # A name resolved to several addresses is several backends: the address tells them
            # apart (it is the name itself when discovery is off).
            names = [backend.url, backend.address]
            for outcome, count in sorted(backend.outcomes.items()):
                attempts.add_metric([*names, outcome], count)
            cumulative, buckets = 0, []
            for bound, count in zip(
                (*map(str, LATENCY_BUCKETS), "+Inf"), backend.latency_counts, strict=True
            ):
                cumulative += count
                buckets.append((bound, float(cumulative)))
            latency.add_metric(names, buckets, backend.latency_sum)
            up.add_metric(names, 1.0 if backend.available(now) else 0.0)
        yield attempts
        yield latency
        yield up


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
