"""Prometheus metrics, read from the gateway's own counters at scrape time.

The hot path only bumps plain ints (see `Backend.observe`); this collector turns them into
metric families when /metrics is scraped, so metrics cost nothing per request beyond that.
"""

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from gateway_service.backends import Balancer
from gateway_service.board import (
    G_CONNECTIONS,
    G_EJECTIONS_REFUSED,
    G_OPEN,
    G_RESPONSES,
    G_RETRIES,
    G_RETRIES_REFUSED,
    LATENCY_BUCKETS,
    STATUS_CODES,
    Board,
)
from gateway_service.clock import Clock
from gateway_service.retry_budget import RetryBudget


class ProxyStats:
    """Counters of what clients saw: this process counts in its own area of the board, and
    readers add every worker's up."""

    __slots__ = ("_base", "_board", "_q")

    def __init__(self, board: Board) -> None:
        self._board = board
        self._q = board.q
        self._base = board.global_base(board.worker)

    def count_response(self, status: int) -> None:
        self._q[self._base + G_RESPONSES + (status if 0 <= status < STATUS_CODES else 0)] += 1

    def count_retry(self) -> None:
        self._q[self._base + G_RETRIES] += 1

    def count_connection(self) -> None:
        self._q[self._base + G_CONNECTIONS] += 1

    def publish_open(self, count: int) -> None:
        """How many client connections this worker holds open now."""
        self._q[self._base + G_OPEN] = count

    def open_connections(self) -> int:
        """Client connections open in the whole gateway."""
        return self._board.sum_words([G_OPEN])[0]

    @property
    def connections(self) -> list[int]:
        """Client connections each worker accepted."""
        board = self._board
        workers = range(board.workers)
        return [board.q[board.global_base(worker) + G_CONNECTIONS] for worker in workers]

    @property
    def responses(self) -> dict[int, int]:
        """status code -> count, over every worker."""
        codes = range(STATUS_CODES)
        counts = self._board.sum_words([G_RESPONSES + code for code in codes])
        return {code: count for code, count in zip(codes, counts, strict=True) if count}

    @property
    def retries(self) -> int:
        return self._board.sum_words([G_RETRIES])[0]

    @property
    def retries_refused(self) -> int:
        """Retries not made because the retry budget was spent."""
        return self._board.sum_words([G_RETRIES_REFUSED])[0]

    @property
    def ejections_refused(self) -> int:
        """Passive bans not made because MAX_EJECTION_PERCENT of the backends were out."""
        return self._board.sum_words([G_EJECTIONS_REFUSED])[0]


class GatewayCollector(Collector):
    def __init__(
        self,
        balancer: Balancer,
        stats: ProxyStats,
        clock: Clock,
        retry_budget: RetryBudget | None = None,
    ) -> None:
        self.balancer = balancer
        self.stats = stats
        self.clock = clock
        self.retry_budget = retry_budget

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
        yield CounterMetricFamily(
            "gateway_retries_refused",
            "Retries not made because the retry budget (RETRY_BUDGET_PERCENT) was spent.",
            value=self.stats.retries_refused,
        )
        yield CounterMetricFamily(
            "gateway_passive_ejections_refused",
            "Backends left in rotation although failing, because MAX_EJECTION_PERCENT of them "
            "were out by passive checks already.",
            value=self.stats.ejections_refused,
        )
        if self.retry_budget is not None:
            active, retrying = self.retry_budget.in_flight
            yield GaugeMetricFamily(
                "gateway_requests_in_flight",
                "Requests for /data in flight now, all workers together.",
                value=active,
            )
            yield GaugeMetricFamily(
                "gateway_requests_retrying",
                "Requests in flight that have made a retry (what the retry budget bounds).",
                value=retrying,
            )

        connections = CounterMetricFamily(
            "gateway_worker_connections",
            "Client connections accepted, by worker process.",
            labels=["worker"],
        )
        for worker, count in enumerate(self.stats.connections):
            connections.add_metric([str(worker)], count)
        yield connections
        yield GaugeMetricFamily(
            "gateway_open_connections",
            "Client connections open now, all workers together.",
            value=self.stats.open_connections(),
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
        up = _backend_gauge("gateway_backend_up", "1 while the backend is in rotation.")
        balancer = self.balancer
        share = _backend_gauge(
            "gateway_backend_slow_start_share",
            "The fraction of its full share the backend gets now (below 1 during slow start).",
        )
        in_flight = _backend_gauge(
            "gateway_backend_in_flight",
            "Attempts on the backend now, all workers together (BALANCING=least_request).",
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
            if balancer.slow_start:
                share.add_metric(names, balancer.slow_start_share(backend, now))
            if balancer.balancing.least_request:
                in_flight.add_metric(names, backend.in_flight)
        yield attempts
        yield latency
        yield up
        if balancer.slow_start:
            yield share
        if balancer.balancing.least_request:
            yield in_flight


def _backend_gauge(name: str, documentation: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=["backend", "address"])


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
