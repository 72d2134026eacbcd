"""Draining a backend at runtime, in each gateway's own runtime API (issue 19).

A description's `capabilities.runtime_api` says which one it speaks (toolkit.gateways.
RUNTIME_APIS); the API listens on ADMIN_PORT, which the stack publishes on 127.0.0.1. Every call
returns once the gateway has taken the change: the drain scenario checks that no request sent
after that reaches the drained backend.
"""

import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.harness.gateways import SUITE_SETTINGS, GatewaySpec

HAPROXY_BACKEND = "storage"
"""The backend haproxy/render.py puts the storage services in (server names: host:port)."""
TIMEOUT = 10.0


class NoRuntimeApi(AssertionError):
    """The gateway has no way to change its backends without a restart."""


def token() -> str:
    return str(SUITE_SETTINGS["ADMIN_TOKEN"])


def bearer(value: str | None = None) -> dict[str, str]:
    """The Authorization header of our admin API (the suite's token unless given)."""
    return {"Authorization": f"Bearer {token() if value is None else value}"}


def drain(spec: GatewaySpec, admin_url: str, storage_url: str) -> None:
    """Stop sending new requests to one storage service; returns when the gateway has."""
    if spec.runtime_api == "gateway":
        response = httpx.post(
            f"{admin_url}/admin/backends/drain",
            json={"url": storage_url},
            headers=bearer(),
            timeout=TIMEOUT,
        )
        assert response.is_success, f"drain: {response.status_code} {response.text[:200]}"
    elif spec.runtime_api == "haproxy":
        server = urlsplit(storage_url).netloc
        answer = haproxy_command(admin_url, f"set server {HAPROXY_BACKEND}/{server} state drain")
        assert answer.strip() == "", f"HAProxy runtime API: {answer.strip()}"
    elif spec.runtime_api == "caddy":
        _caddy_remove_upstream(admin_url, urlsplit(storage_url).netloc)
    else:
        raise NoRuntimeApi(f"{spec.name} has no runtime API (capabilities.runtime_api)")


def haproxy_command(admin_url: str, command: str) -> str:
    """One command on HAProxy's runtime API (a TCP stats socket); its answer."""
    address = urlsplit(admin_url)
    assert address.hostname is not None, admin_url
    assert address.port is not None, admin_url
    with socket.create_connection((address.hostname, address.port), timeout=TIMEOUT) as sock:
        sock.sendall(command.encode() + b"\n")
        chunks = []
        # Without `prompt` mode HAProxy answers one command and closes the connection.
        while chunk := sock.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def _caddy_remove_upstream(admin_url: str, dial: str) -> None:
    """Caddy has no drain state: the upstream leaves the reverse_proxy's list. Caddy applies a
    config change before the call returns; requests in flight finish on the old one."""
    with httpx.Client(base_url=admin_url, timeout=TIMEOUT) as client:
        config = client.get("/config/")
        config.raise_for_status()
        for path, upstreams in _caddy_upstream_lists(config.json(), "/config"):
            for index, upstream in enumerate(upstreams):
                if upstream.get("dial") == dial:
                    response = client.delete(f"{path}/upstreams/{index}")
                    assert response.is_success, f"Caddy admin API: {response.text[:200]}"
                    return
    raise AssertionError(f"Caddy's config has no upstream {dial}")


def _caddy_upstream_lists(node: Any, path: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(config path, upstreams) of every reverse_proxy handler in Caddy's JSON config."""
    if isinstance(node, dict):
        if node.get("handler") == "reverse_proxy" and isinstance(node.get("upstreams"), list):
            yield path, node["upstreams"]
        for key, value in node.items():
            yield from _caddy_upstream_lists(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _caddy_upstream_lists(value, f"{path}/{index}")
