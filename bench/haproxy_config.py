"""HAProxy's config for the bench: the image's own generator (haproxy/render.py), bound to
loopback, over storage services on local ports, with the bench's shared settings."""

from collections.abc import Mapping

from haproxy.render import Settings, render, settings_from


def image_settings(values: Mapping[str, float]) -> Settings:
    """The bench's shared settings (common names) read as the images read their environment
    (Caddy's too); no DNS, as the servers are addresses."""
    env = {name: str(value) for name, value in values.items()}
    return settings_from({**env, "DISCOVERY_INTERVAL": "0"})


def loopback_servers(storage_ports: list[int]) -> list[str]:
    """The storage services as the generators' host:port authorities."""
    return [f"127.0.0.1:{port}" for port in storage_ports]


def render_haproxy(
    listen_port: int, storage_ports: list[int], values: Mapping[str, float], threads: int = 1
) -> str:
    """`nbthread threads` (one by default), round-robin, retries on another server, active +
    passive health, keep-alive; no /status (the bench does not read it)."""
    return render(
        f"127.0.0.1:{listen_port}",
        loopback_servers(storage_ports),
        image_settings({**values, "WORKERS": threads}),
        status_lua=None,
    )
