"""The gateways under test, described by what the suite needs to know about each.

Tests branch on capabilities (`active_health`, `counts_requests`), never on names, so another
gateway is one more `GatewaySpec` in `GATEWAYS` (see docs/contract-suite.md).

Timings are shorter than the production defaults so that failures are detected, and waited
out, in seconds; every bound a test asserts is derived from these numbers.
"""

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Timing:
    connect_timeout: float
    """Seconds the gateway waits to open a connection to a storage service."""
    read_timeout: float
    """Seconds the gateway waits for a storage service's response."""
    fail_timeout: float
    """Seconds a passively failed service stays out of rotation."""
    health_interval: float | None
    """Seconds between active /health probes; None: the gateway has no active checks."""
    health_rise: int = 2
    health_fall: int = 2


@dataclass(frozen=True)
class GatewaySpec:
    name: str
    """The pytest id: tests show up as test_x[<name>]."""
    image: str
    port: int
    """The port the gateway listens on inside its container."""
    timing: Timing
    env: Callable[[list[str]], Mapping[str, str]]
    """Container environment, given the storage base URLs in order."""
    counts_requests: bool
    """Whether /status reports `requests_served` (nginx cannot)."""
    deviations: Mapping[str, str] = field(default_factory=dict)
    """Known, accepted departures from the contract: check name -> why. A test that meets one
    runs as a strict xfail with that reason, so the deviation stays visible and is re-checked."""
    extra_env: Mapping[str, str] = field(default_factory=dict)
    default: bool = True
    """Whether a run without CONTRACT_GATEWAYS / --gateways includes it."""

    @property
    def active_health(self) -> bool:
        return self.timing.health_interval is not None

    def environment(self, storage_urls: list[str]) -> dict[str, str]:
        return {**self.env(storage_urls), **self.extra_env}


OUR_TIMING = Timing(
    connect_timeout=0.5,
    read_timeout=2.0,
    fail_timeout=3.0,
    health_interval=0.5,
    health_rise=2,
    health_fall=2,
)


def _active_env(t: Timing, urls: list[str]) -> dict[str, str]:
    """The gateway's own setting names, for a gateway with active health checks."""
    assert t.health_interval is not None
    return {
        "STORAGE_SERVICES": ",".join(urls),
        "CONNECT_TIMEOUT": str(t.connect_timeout),
        "READ_TIMEOUT": str(t.read_timeout),
        "MAX_FAILS": "1",
        "FAIL_TIMEOUT": str(t.fail_timeout),
        "HEALTH_INTERVAL": str(t.health_interval),
        "HEALTH_TIMEOUT": "0.5",
        "HEALTH_RISE": str(t.health_rise),
        "HEALTH_FALL": str(t.health_fall),
        "RETRY_AFTER": "1",
    }


def _our_env(urls: list[str]) -> dict[str, str]:
    return {**_active_env(OUR_TIMING, urls), "LOG_FORMAT": "json"}


NGINX_TIMING = Timing(
    connect_timeout=0.5,
    read_timeout=2.0,
    fail_timeout=3.0,
    health_interval=None,
)


def _nginx_env(urls: list[str]) -> dict[str, str]:
    # nginx/env.sh reads the gateway's own setting names (in seconds) and renders them into
    # `server ... max_fails= fail_timeout=` and the proxy_*_timeout directives.
    t = NGINX_TIMING
    return {
        "STORAGE_SERVICES": ",".join(urls),
        "CONNECT_TIMEOUT": str(t.connect_timeout),
        "READ_TIMEOUT": str(t.read_timeout),
        "MAX_FAILS": "1",
        "FAIL_TIMEOUT": str(t.fail_timeout),
        "HEALTH_TIMEOUT": "0.5",
        "RETRY_AFTER": "1",
    }


HAPROXY_TIMING = OUR_TIMING
"""haproxy/render.py maps the same settings onto `timeout connect/server`, `inter`, `rise`,
`fall` and `observe layer7 error-limit MAX_FAILS`; FAIL_TIMEOUT has no HAProxy equivalent (a
passively failed server is back when its checks rise)."""

CADDY_TIMING = Timing(
    connect_timeout=0.5,
    read_timeout=2.0,
    fail_timeout=3.0,
    health_interval=0.5,
    health_rise=1,
    health_fall=1,
)
"""caddy/render.py: `dial_timeout`, `response_header_timeout`, `fail_duration`,
`health_interval`; Caddy 2.6 has no rise/fall (one probe decides)."""


GATEWAYS: tuple[GatewaySpec, ...] = (
    GatewaySpec(
        name="gateway",
        image=os.environ.get("CONTRACT_GATEWAY_IMAGE", "service-assembly/gateway:dev"),
        port=8000,
        timing=OUR_TIMING,
        env=_our_env,
        counts_requests=True,
    ),
    GatewaySpec(
        name="nginx",
        image=os.environ.get("CONTRACT_NGINX_IMAGE", "service-assembly/nginx:dev"),
        port=8080,
        timing=NGINX_TIMING,
        env=_nginx_env,
        counts_requests=False,
        deviations={
            "header-line-without-colon": (
                "nginx's parser accepts a header line without a colon as an empty-valued field "
                "and forwards it (`NoColonHere: `) instead of answering 400"
            ),
            "first-back-after-outage": (
                "nginx keeps every server it marked failed out for fail_timeout, even when all "
                "are marked; the first one back serves only once that has passed (it resets the "
                "marks itself only for an upstream of one server)"
            ),
        },
    ),
    GatewaySpec(
        name="haproxy",
        image=os.environ.get("CONTRACT_HAPROXY_IMAGE", "service-assembly/haproxy:dev"),
        port=8081,
        timing=HAPROXY_TIMING,
        env=lambda urls: _active_env(HAPROXY_TIMING, urls),
        counts_requests=True,
        deviations={
            "retried-5xx-kept-in-rotation": (
                "HAProxy retries a 5xx answer on another server (retry-on) before its passive "
                "check (observe layer7) sees it, so a service answering 500/503 stays in "
                "rotation until its active checks fail (never, for 500 on /data alone)"
            ),
            "retried-timeout-kept-in-rotation": (
                "HAProxy retries a read timeout on another server (retry-on response-timeout) "
                "before its passive check sees it, so a service that hangs on /data while its "
                "/health answers stays in rotation and every request it gets waits READ_TIMEOUT"
            ),
        },
    ),
    GatewaySpec(
        name="caddy",
        image=os.environ.get("CONTRACT_CADDY_IMAGE", "service-assembly/caddy:dev"),
        port=8082,
        timing=CADDY_TIMING,
        env=lambda urls: _active_env(CADDY_TIMING, urls),
        counts_requests=False,
        # Out of the default set: Caddy cannot produce /status, which Stack.reset waits on, so a
        # run errors at the first reset (docs/contract-suite.md, "HAProxy and Caddy").
        default=False,
    ),
)

STORAGE_IMAGE = os.environ.get("CONTRACT_STORAGE_IMAGE", "service-assembly/storage:dev")
STORAGE_PORT = 8000
STORAGE_NAMES = ("storage1", "storage2", "storage3")


def selected(names: str | None) -> tuple[GatewaySpec, ...]:
    """The gateways named in a comma-separated list (the default ones when None or empty)."""
    if not names:
        return tuple(g for g in GATEWAYS if g.default)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = {g.name: g for g in GATEWAYS}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ValueError(f"unknown gateway(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return tuple(known[n] for n in wanted)
