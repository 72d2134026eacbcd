"""HAProxy's configuration for the bench: the image's own generator (haproxy/render.py), bound
to loopback, over storage services on local ports, with the bench's gateway settings."""

from bench.settings import GatewaySettings
from haproxy.render import Settings, render


def image_settings(gw: GatewaySettings) -> Settings:
    """The bench's gateway settings as the images' generators take them (Caddy's too); no DNS,
    as the servers are addresses."""
    return Settings(
        connect_timeout_s=gw.connect_timeout_s,
        read_timeout_s=gw.read_timeout_s,
        max_fails=gw.max_fails,
        health_interval_s=gw.health_interval_s,
        health_timeout_s=gw.health_timeout_s,
        health_rise=gw.health_rise,
        health_fall=gw.health_fall,
        retry_after_s=gw.retry_after_s,
        discovery_interval_s=0,
    )


def loopback_servers(storage_ports: list[int]) -> list[str]:
    """The storage services as the generators' host:port authorities."""
    return [f"127.0.0.1:{port}" for port in storage_ports]


def render_haproxy(listen_port: int, storage_ports: list[int], gw: GatewaySettings) -> str:
    """One thread, round-robin, retries on another server, active + passive health, keep-alive;
    no /status (the bench does not read it)."""
    return render(
        f"127.0.0.1:{listen_port}",
        loopback_servers(storage_ports),
        image_settings(gw),
        threads=1,
        status_lua=None,
    )
