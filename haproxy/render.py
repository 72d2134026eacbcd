"""HAProxy's configuration, rendered from the gateway's setting names (docs/deploy.md).

One generator for both uses: the image runs this file at container start (`python3 render.py
OUTPUT`, standard library only, reading the environment), and the benchmark renders a
loopback-only config for host processes through `render` (bench/haproxy_config.py).
"""

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

STATUS_LUA = "/usr/local/lib/service-assembly/haproxy-status.lua"
VALID_REQUEST_ID = "^[A-Za-z0-9._:-]{1,128}$"
VALID_TRACEPARENT = "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
NEW_TRACEPARENT = (
    "00-%[uuid(),regsub(-,,g)]-%[uuid(),field(1,-)]%[uuid(),field(2,-)]%[uuid(),field(3,-)]-01"
)
"""A fresh W3C traceparent: a random trace id (32 hex) and parent id (16 hex: a UUID's first
three fields), sampled."""
UNAVAILABLE = '{"detail": "no storage service available"}'


class SettingError(ValueError):
    """A setting that cannot be turned into configuration; the message is one line."""


@dataclass(frozen=True)
class Settings:
    """The common settings the proxy images take (HAProxy's and Caddy's), in the gateway's
    units."""

    connect_timeout_s: float = 1.0
    read_timeout_s: float = 5.0
    max_fails: int = 1
    health_interval_s: float = 2.0
    health_timeout_s: float = 1.0
    health_rise: int = 2
    health_fall: int = 2
    retry_after_s: int = 1
    discovery_interval_s: float = 5.0
    """Seconds between DNS resolutions of the servers' names; 0: resolve once, at start."""
    access_log: bool = True
    workers: int | None = None
    """HAProxy's `nbthread`, Caddy's GOMAXPROCS; None leaves it to the program, which counts
    the CPUs it may run on but not a container's CPU quota (docs/deploy.md)."""
    shutdown_timeout_s: float = 10.0
    """The longest a graceful stop waits for requests in flight (HAProxy's `hard-stop-after`,
    Caddy's `grace_period`)."""
    balancing: str = "round_robin"
    """BALANCING: `round_robin`, or `least_request` (HAProxy `balance random(2)`, the power of
    two choices over requests in flight as the gateway's; Caddy `lb_policy least_conn`)."""
    slow_start_s: float = 0.0
    """SLOW_START: a server back in rotation ramps to its full weight over this many seconds
    (HAProxy `slowstart`; Caddy has no equivalent); 0: off."""
    admin_host: str = "127.0.0.1"
    admin_port: int = 0
    """ADMIN_HOST/ADMIN_PORT: where the runtime API listens (HAProxy's stats socket at level
    admin, Caddy's admin endpoint); port 0: off. Neither takes the gateway's ADMIN_TOKEN: keep the
    address private."""


MAX_WORKERS = 64
"""As the gateway's (gateway_service/settings.py); HAProxy 2.6 is built for 64 threads at most."""
BALANCING = ("round_robin", "least_request")


def _ms(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def _json_string(text: str) -> str:
    """A single-quoted HAProxy word holding `text` (no single quotes in it)."""
    assert "'" not in text
    return f"'{text}'"


def _answer(status: int, body: str, rest: str) -> str:
    """An `http-request return` of a JSON body; `rest`: extra headers and the condition."""
    return (
        f"    http-request return status {status} content-type application/json"
        f" string {_json_string(body)} {rest}\n"
    )


def render(
    bind: str,
    servers: list[str],
    settings: Settings,
    *,
    status_lua: str | None = STATUS_LUA,
) -> str:
    """The whole haproxy.cfg: `servers` are host:port authorities, in rotation order.

    Round robin, a failed attempt retried on another server, active checks of /health with
    rise/fall, passive marking (`observe layer7`), the contract's 503 JSON, X-Request-ID,
    /health answered here and /status from `status_lua` (None: 404, as the bench needs none).
    """
    s = settings
    discovery = s.discovery_interval_s > 0
    resolve = " resolvers docker init-addr last,libc,none resolve-prefer ipv4" if discovery else ""
    passive = (
        f" observe layer7 error-limit {s.max_fails} on-error mark-down" if s.max_fails > 0 else ""
    )
    # HEALTH_INTERVAL=0: no active checks (HAProxy still needs a valid interval to parse).
    interval_s = s.health_interval_s or 2.0
    interval = _ms(interval_s)
    # A server half-way through a rise or a fall is re-checked sooner (HAProxy's fastinter),
    # so the first server back after an outage confirms within one interval, not `rise` of them.
    confirm = _ms(max(interval_s / 4, 0.05))
    unavailable = (
        f"status 503 content-type application/json string {_json_string(UNAVAILABLE)}"
        f" hdr Retry-After {s.retry_after_s}"
    )
    check = " check" if s.health_interval_s > 0 else ""
    server_lines = "\n".join(f"    server {a} {a}{check}" for a in servers)
    global_lines = [
        "    maxconn 4096",
        "    log stdout format raw local0",
        *([f"    nbthread {s.workers}"] if s.workers else []),
        # A stop (SIGUSR1, the image's STOPSIGNAL) or a reload lets requests in flight finish
        # for this long, then closes what is left.
        f"    hard-stop-after {_ms(s.shutdown_timeout_s)}",
        *([f"    lua-load {status_lua}"] if status_lua else []),
        # ADMIN_PORT: the runtime API (`set server storage/NAME state drain`, weights).
        *(
            [f"    stats socket ipv4@{s.admin_host}:{s.admin_port} level admin"]
            if s.admin_port
            else []
        ),
    ]
    resolvers = (
        f"""
# DISCOVERY_INTERVAL: the servers' names are resolved again this often (Docker's DNS).
resolvers docker
    parse-resolv-conf
    timeout resolve {_ms(s.discovery_interval_s)}
    hold valid {_ms(s.discovery_interval_s)}
"""
        if discovery
        else ""
    )
    status = "    http-request use-service lua.status if { path /status }\n" if status_lua else ""
    answers = (
        # Its own state now: no cache may keep it (as ours and nginx say too).
        _answer(200, '{"status": "ok"}', "hdr Cache-Control no-store if { path /health }")
        + status
        + _answer(
            405,
            '{"detail": "Method Not Allowed"}',
            'hdr Allow "GET, HEAD" if { path /data } !{ method GET HEAD }',
        )
        + _answer(404, '{"detail": "Not Found"}', "unless { path /data }")
    )
    checks = (
        f"inter {interval} fastinter {confirm} downinter {interval}"
        f" fall {s.health_fall} rise {s.health_rise}{passive}{resolve}"
        + (f" slowstart {_ms(s.slow_start_s)}" if s.slow_start_s > 0 else "")
    )
    balance = "random(2)" if s.balancing == "least_request" else "roundrobin"
    return f"""# Rendered by haproxy/render.py from the gateway's setting names (docs/deploy.md).
global
{chr(10).join(global_lines)}
{resolvers}
defaults
    mode http
    log global
    {"option httplog" if s.access_log else "no log"}
    timeout connect {_ms(s.connect_timeout_s)}
    timeout server {_ms(s.read_timeout_s)}
    timeout client 75s
    timeout http-request 10s
    timeout http-keep-alive 75s
    # A failed attempt moves to the next server (GET is idempotent), like proxy_next_upstream.
    retries {max(len(servers) - 1, 1)}
    option redispatch 1
    retry-on conn-failure empty-response junk-response response-timeout 500 502 503 504

frontend gateway
    bind {bind}
    # X-Request-ID: a client's 1..128 of [A-Za-z0-9._:-] is kept, anything else replaced.
    unique-id-format %[uuid()]
    acl rid_valid req.fhdr(x-request-id) -m reg '{VALID_REQUEST_ID}'
    http-request set-var(txn.rid) req.fhdr(x-request-id) if rid_valid
    http-request set-var(txn.rid) unique-id unless rid_valid
    http-request set-header X-Request-ID %[var(txn.rid)]
    # Every answer, HAProxy's own included, carries the id once.
    http-after-response set-header X-Request-ID %[var(txn.rid)]
    # W3C trace context: a client's valid traceparent goes on to the storage service as is;
    # without one (or an invalid one) HAProxy starts a trace.
    acl traceparent_valid req.fhdr(traceparent) -m reg '{VALID_TRACEPARENT}'
    http-request set-header traceparent {NEW_TRACEPARENT} unless traceparent_valid
    # HAProxy writes no Date on the answers it makes itself; RFC 9110 6.6.1 asks an origin
    # with a clock for one (httplint warns without it). A relayed Date is left as it is.
    http-after-response set-header Date %[date,http_date] unless {{ res.hdr(date) -m found }}
{answers}    default_backend storage

backend storage
    balance {balance}
    http-reuse safe
    # Storage services answer GET only; HAProxy still sends no body to a HEAD client.
    http-request set-method GET if METH_HEAD
    option httpchk GET /health
    http-check expect status 200
    # Active checks (inter/rise/fall); passive ones (observe: MAX_FAILS errors mark it down).
    default-server {checks}
    timeout check {_ms(s.health_timeout_s)}
    # No server left, or the last one tried failed too: the contract's 503.
    http-error {unavailable}
    http-response return {unavailable} if {{ status 500:599 }}
{server_lines}
"""


# -- the image: settings from the environment ------------------------------------------------


def _seconds(env: Mapping[str, str], name: str, default: str, *, zero: bool = False) -> float:
    raw = env.get(name, default).strip()
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0 or (value == 0 and not zero) or value > 3600:
        least = "a non-negative" if zero else "a positive"
        raise SettingError(f"{name} must be {least} number of seconds, got {raw!r}")
    return value


def _integer(env: Mapping[str, str], name: str, default: str, *, minimum: int = 0) -> int:
    raw = env.get(name, default).strip()
    if not raw.isdigit() or int(raw) < minimum:
        raise SettingError(f"{name} must be an integer >= {minimum}, got {raw!r}")
    return int(raw)


def _workers(env: Mapping[str, str]) -> int | None:
    """WORKERS, when set: 1..MAX_WORKERS. Set but empty is a mistake, as for the gateway."""
    if "WORKERS" not in env:
        return None
    raw = env["WORKERS"].strip()
    if not re.fullmatch(r"[0-9]{1,3}", raw) or not 1 <= int(raw) <= MAX_WORKERS:
        raise SettingError(f"WORKERS must be an integer from 1 to {MAX_WORKERS}, got {raw!r}")
    return int(raw)


def _flag(env: Mapping[str, str], name: str, default: str) -> bool:
    raw = env.get(name, default).strip().lower()
    if raw not in {"true", "1", "yes", "false", "0", "no"}:
        raise SettingError(f"{name} must be true or false, got {raw!r}")
    return raw in {"true", "1", "yes"}


AUTHORITY = re.compile(r"[A-Za-z0-9.-]+:[0-9]{1,5}")


def storage_authorities(value: str) -> list[str]:
    """STORAGE_SERVICES ("http://host:port,...") as host:port, in order."""
    authorities = []
    for entry in value.split(","):
        url = entry.strip().rstrip("/")
        if not url:
            continue
        if not url.startswith("http://"):
            raise SettingError(f"STORAGE_SERVICES entries must be http://host:port, got {entry!r}")
        authority = url.removeprefix("http://")
        if ":" not in authority:
            authority += ":80"
        if not AUTHORITY.fullmatch(authority):
            raise SettingError(
                f"STORAGE_SERVICES entries must be http://host:port without a path, got {entry!r}"
            )
        authorities.append(authority)
    if not authorities:
        raise SettingError("STORAGE_SERVICES is required, e.g. http://storage1:8000,...")
    return authorities


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name, default).strip()
    if raw not in choices:
        raise SettingError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def settings_from(env: Mapping[str, str]) -> Settings:
    """The documented settings; unset ones keep the defaults of `Settings` above (the gateway's
    own, which tests/unit/test_proxy_configs.py holds them to)."""
    d = Settings()
    return Settings(
        connect_timeout_s=_seconds(env, "CONNECT_TIMEOUT", str(d.connect_timeout_s)),
        read_timeout_s=_seconds(env, "READ_TIMEOUT", str(d.read_timeout_s)),
        max_fails=_integer(env, "MAX_FAILS", str(d.max_fails)),
        health_interval_s=_seconds(env, "HEALTH_INTERVAL", str(d.health_interval_s), zero=True),
        health_timeout_s=_seconds(env, "HEALTH_TIMEOUT", str(d.health_timeout_s)),
        health_rise=_integer(env, "HEALTH_RISE", str(d.health_rise), minimum=1),
        health_fall=_integer(env, "HEALTH_FALL", str(d.health_fall), minimum=1),
        retry_after_s=_integer(env, "RETRY_AFTER", str(d.retry_after_s)),
        discovery_interval_s=_seconds(
            env, "DISCOVERY_INTERVAL", str(d.discovery_interval_s), zero=True
        ),
        access_log=_flag(env, "ACCESS_LOG", str(d.access_log)),
        workers=_workers(env),
        shutdown_timeout_s=_seconds(env, "SHUTDOWN_TIMEOUT", str(d.shutdown_timeout_s)),
        balancing=_choice(env, "BALANCING", d.balancing, BALANCING),
        slow_start_s=_seconds(env, "SLOW_START", str(d.slow_start_s), zero=True),
        admin_host=_admin_host(env, d.admin_host),
        admin_port=_port(env, "ADMIN_PORT", str(d.admin_port)),
    )


def _admin_host(env: Mapping[str, str], default: str) -> str:
    raw = env.get("ADMIN_HOST", default).strip()
    if not re.fullmatch(r"[0-9]{1,3}(\.[0-9]{1,3}){3}", raw):
        raise SettingError(f"ADMIN_HOST must be an IPv4 address, got {raw!r}")
    return raw


def _port(env: Mapping[str, str], name: str, default: str) -> int:
    value = _integer(env, name, default)
    if value > 65535:
        raise SettingError(f"{name} must be a TCP port (0: off), got {value}")
    return value


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python3 -m haproxy.render OUTPUT_FILE", file=sys.stderr)
        return 2
    env = os.environ
    try:
        port = _integer(env, "HAPROXY_LISTEN_PORT", "8081", minimum=1)
        config = render(
            f":{port}", storage_authorities(env.get("STORAGE_SERVICES", "")), settings_from(env)
        )
    except SettingError as error:
        print(f"haproxy config: {error}", file=sys.stderr)
        return 2
    Path(argv[1]).write_text(config)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
