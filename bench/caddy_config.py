"""Caddy's Caddyfile for the bench: the image's own generator (caddy/render.py), bound to
loopback, over storage services on local ports, with the same settings HAProxy gets."""

from collections.abc import Mapping

from bench.haproxy_config import image_settings, loopback_servers
from caddy.render import render


def render_caddy(listen_port: int, storage_ports: list[int], values: Mapping[str, float]) -> str:
    """Round robin, retries within the try duration, active + passive health, admin API off."""
    return render(
        listen_port,
        loopback_servers(storage_ports),
        image_settings(values),
        float(values["FAIL_TIMEOUT"]),
        bind_host="127.0.0.1",
    )
