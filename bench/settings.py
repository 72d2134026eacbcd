"""What one benchmark run does: load, pinning, durations and the gateways' shared settings."""

from dataclasses import asdict, dataclass, field, replace
from typing import Any

DEFAULT_TARGETS = ("direct", "gateway", "nginx", "haproxy")
# `fastapi-httpx`: bench/baselines/fastapi_httpx.py, the textbook design, measured on request.
ALL_TARGETS = (*DEFAULT_TARGETS, "fastapi-httpx")
# The failover drills run against these; the baseline has no health checks to drill.
GATEWAYS = ("gateway", "nginx", "haproxy")


@dataclass(frozen=True)
class GatewaySettings:
    """The failure-handling settings every gateway gets, from docs/contract.md's defaults."""

    connect_timeout_s: float = 1.0
    read_timeout_s: float = 5.0
    max_fails: int = 1
    fail_timeout_s: int = 10
    health_interval_s: float = 2.0
    health_timeout_s: float = 1.0
    health_rise: int = 2
    health_fall: int = 2
    retry_after_s: int = 1
    upstream_keepalive: int = 32


@dataclass(frozen=True)
class BenchSettings:
    """Everything that shapes the figures; printed and saved with the results."""

    targets: tuple[str, ...] = DEFAULT_TARGETS
    rounds: int = 3
    connections: int = 32
    wrk_threads: int = 1
    # wrk takes whole seconds.
    duration_s: int = 10
    latency_duration_s: int = 5
    warmup_s: int = 2
    server_cpus: str | None = "0"
    client_cpus: str | None = "1"
    storage_count: int = 3
    data_bytes: int = 512
    access_log: str = "file"
    failover: bool = True
    failover_duration_s: int = 10
    outage_s: float = 3.0
    recovery_window_s: float = 12.0
    smoke: bool = False
    gateway: GatewaySettings = field(default_factory=GatewaySettings)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def smoke_settings(base: BenchSettings) -> BenchSettings:
    """A few seconds per target, one round, every code path (for CI; it claims no timing)."""
    return replace(
        base,
        rounds=1,
        connections=min(base.connections, 8),
        wrk_threads=1,
        duration_s=2,
        latency_duration_s=1,
        warmup_s=1,
        failover_duration_s=4,
        outage_s=1.0,
        recovery_window_s=2.0,
        smoke=True,
    )
