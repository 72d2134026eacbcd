"""What one benchmark run does: load, pinning, durations and the gateways' shared settings."""

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from toolkit.gateways import ORDER, Gateway, common_settings, load, user_files


@dataclass(frozen=True)
class TargetKind:
    """One thing the bench can measure; TARGETS below is the only list of them."""

    name: str
    description: str
    # In --targets' default list.
    default: bool
    # A gateway proper: the failover drills and the memory phase run against it.
    gateway: bool
    # A baseline: the ASGI app uvicorn serves (bench/baselines/), measured only when named.
    app: str | None = None


def described(name: str) -> Gateway:
    """A gateway's description (gateways/<name>.toml): what it is, and the settings it takes."""
    return _DESCRIBED[name]


# GATEWAY_FILES (or --gateway-file, which bench/__main__.py turns into it) adds users' own.
_DESCRIBED = {g.name: g for g in load(user_files())}


def _gateway(name: str) -> TargetKind:
    return TargetKind(name, described(name).summary, default=True, gateway=True)


def _users_gateway(gateway: Gateway) -> TargetKind:
    return TargetKind(gateway.name, f"{gateway.summary} ({gateway.source})", False, gateway=True)


TARGETS = (
    TargetKind("direct", "wrk straight to one storage service", default=True, gateway=False),
    # The bench starts each of the project's own gateways as a local process (bench/targets.py).
    *(_gateway(name) for name in ORDER),
    # A user's gateway, when its description says how to run it as a process (`command`).
    *(_users_gateway(g) for g in _DESCRIBED.values() if g.name not in ORDER and g.command),
    TargetKind(
        "fastapi-httpx",
        "baseline: FastAPI route + shared httpx.AsyncClient (the textbook design)",
        default=False,
        gateway=False,
        app="bench.baselines.fastapi_httpx:app",
    ),
    TargetKind(
        "asgi-aiohttp",
        "baseline: plain ASGI proxy + shared aiohttp.ClientSession",
        default=False,
        gateway=False,
        app="bench.baselines.asgi_aiohttp:app",
    ),
    TargetKind(
        "asgi-pyreqwest",
        "baseline: plain ASGI proxy + shared pyreqwest async Client",
        default=False,
        gateway=False,
        app="bench.baselines.asgi_pyreqwest:app",
    ),
)
TARGET_KINDS = {t.name: t for t in TARGETS}
ALL_TARGETS = tuple(t.name for t in TARGETS)
DEFAULT_TARGETS = tuple(t.name for t in TARGETS if t.default)
# The failover drills and the memory phase run against these; baselines have no health checks.
GATEWAYS = tuple(t.name for t in TARGETS if t.gateway)
MIB = 1024 * 1024


SHARED_SETTINGS = (
    "CONNECT_TIMEOUT",
    "READ_TIMEOUT",
    "MAX_FAILS",
    "FAIL_TIMEOUT",
    "HEALTH_INTERVAL",
    "HEALTH_TIMEOUT",
    "HEALTH_RISE",
    "HEALTH_FALL",
    "RETRY_AFTER",
)
"""The failure-handling settings every gateway gets, by their common names."""


def shared_settings() -> dict[str, float]:
    """Their production defaults, as our gateway defines them (toolkit/gateways.py)."""
    defaults = common_settings()
    return {name: defaults[name] for name in SHARED_SETTINGS}


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
    # Memory phase: each gateway's RSS while `memory_clients` clients fetch a large body at once.
    memory: bool = True
    memory_clients: int = 5
    memory_body_bytes: int = 100 * MIB
    # Each client gives up after this long (what it got by then is reported).
    memory_deadline_s: float = 60.0
    # RSS "after" is read this long after the last client finished.
    memory_after_s: float = 2.0
    # Cores phase (bench/cores.py): every gateway measured at each of these worker counts;
    # empty: the phase is skipped.
    cores: tuple[int, ...] = (1, 2)
    smoke: bool = False
    gateway: dict[str, float] = field(default_factory=shared_settings)
    # nginx's `keepalive` in its upstream block: idle connections kept per worker.
    upstream_keepalive: int = 32

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
        memory_clients=min(base.memory_clients, 2),
        memory_body_bytes=min(base.memory_body_bytes, 20 * MIB),
        memory_deadline_s=min(base.memory_deadline_s, 20.0),
        smoke=True,
    )
