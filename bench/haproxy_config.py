"""HAProxy's configuration, rendered from the same settings the other gateways get."""

from bench.settings import GatewaySettings


def _ms(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def render_haproxy(listen_port: int, storage_ports: list[int], gw: GatewaySettings) -> str:
    """One thread, round-robin, retries on another server, active + passive health, keep-alive."""
    servers = "\n".join(
        f"    server storage{i} 127.0.0.1:{port} check"
        for i, port in enumerate(storage_ports, start=1)
    )
    health = "http-request return status 200 content-type application/json string"
    checks = (
        f"inter {_ms(gw.health_interval_s)} fall {gw.health_fall} rise {gw.health_rise}"
        f" observe layer7 error-limit {gw.max_fails} on-error mark-down"
    )
    unavailable = (
        "http-error status 503 content-type application/json"
        """ string '{"detail": "no storage service available"}'"""
        f" hdr Retry-After {gw.retry_after_s}"
    )
    return f"""# Rendered by bench/haproxy_config.py, with the settings nginx/ and our gateway get.
global
    nbthread 1
    maxconn 4096
    # One line per request, like the other gateways; stdout goes where the bench says.
    log stdout format raw local0

defaults
    mode http
    log global
    option httplog
    timeout connect {_ms(gw.connect_timeout_s)}
    timeout server {_ms(gw.read_timeout_s)}
    timeout client 75s
    timeout http-keep-alive 75s
    # A failed attempt moves to the next server (GET is idempotent), like proxy_next_upstream.
    retries {len(storage_ports) - 1}
    option redispatch 1
    retry-on conn-failure empty-response junk-response response-timeout 502 503 504

frontend gateway
    bind 127.0.0.1:{listen_port}
    {health} '{{"status": "ok"}}' if {{ path /health }}
    default_backend storage

backend storage
    balance roundrobin
    http-reuse always
    option httpchk GET /health
    # Active checks (inter/rise/fall) and passive ones (observe: MAX_FAILS errors mark it down).
    default-server {checks}
    timeout check {_ms(gw.health_timeout_s)}
    {unavailable}
{servers}
"""
