"""A client for a gateway's `GET /status` (docs/contract.md), read into dataclasses."""

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class StatusError(Exception):
    """/status did not answer, or not with the contract's document; the message is one line."""


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """One entry of `services`: a storage service as the gateway sees it."""

    url: str
    status: str  # "available" or "unavailable"
    last_checked: str | None = None
    last_check_latency_ms: float | None = None
    consecutive_failures: int | None = None
    # None where the gateway cannot count (nginx).
    requests_served: int | None = None
    # Ours only: the name resolved and the address routed to (one entry per address).
    name: str | None = None
    address: str | None = None

    @property
    def available(self) -> bool:
        return self.status == "available"

    @property
    def host(self) -> str | None:
        return urlsplit(self.url).hostname


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    """The whole `/status` document."""

    available: int
    total: int
    services: tuple[ServiceStatus, ...]
    # Ours only: the settings in effect.
    settings: Mapping[str, Any] | None
    # As sent: the contract suite checks its exact shape, which the fields above smooth over.
    document: Mapping[str, Any]

    @property
    def all_available(self) -> bool:
        return self.total > 0 and self.available == self.total

    def service(self, host_or_url: str) -> ServiceStatus | None:
        """The first entry whose URL, or the URL's host, is `host_or_url`."""
        return next((s for s in self.services if host_or_url in (s.url, s.host)), None)


def _field(entry: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = entry.get(name)
    # JSON true/false are Python bools, which are ints: a count must not be one.
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        expected = " or ".join(k.__name__ for k in kinds)
        raise StatusError(f"/status: {name}={value!r} is not of type {expected}")
    return value


def _required(entry: Mapping[str, Any], name: str, kind: type) -> Any:
    if entry.get(name) is None:
        raise StatusError(f"/status: {name} is missing")
    return _field(entry, name, kind)


def _service(entry: object) -> ServiceStatus:
    if not isinstance(entry, Mapping):
        raise StatusError(f"/status: a services entry is not an object: {entry!r}")
    return ServiceStatus(
        url=_required(entry, "url", str),
        status=_required(entry, "status", str),
        last_checked=_field(entry, "last_checked", str),
        last_check_latency_ms=_field(entry, "last_check_latency_ms", (int, float)),
        consecutive_failures=_field(entry, "consecutive_failures", int),
        requests_served=_field(entry, "requests_served", int),
        name=_field(entry, "name", str),
        address=_field(entry, "address", str),
    )


def parse_status(document: object) -> GatewayStatus:
    """The typed view of a parsed `/status` body; raises StatusError saying what is wrong."""
    if not isinstance(document, Mapping):
        raise StatusError(f"/status: the body is not a JSON object: {document!r:.100}")
    services = _required(document, "services", list)
    return GatewayStatus(
        available=_required(document, "available", int),
        total=_required(document, "total", int),
        services=tuple(_service(entry) for entry in services),
        settings=_field(document, "settings", Mapping),
        document=document,
    )


def fetch_status(base_url: str, timeout: float = 1.0) -> GatewayStatus:
    """GET `base_url`/status; raises StatusError when it does not answer 200 with the document."""
    url = f"{base_url.rstrip('/')}/status"
    try:
        # `base_url` is the gateway under test: the operator's or the harness's own.
        with urllib.request.urlopen(url, timeout=timeout) as response:  # nosec B310
            body = response.read()
    except urllib.error.HTTPError as error:
        raise StatusError(f"{url} answered {error.code}") from None
    except (OSError, http.client.HTTPException) as error:
        raise StatusError(f"{url}: {error!r}") from None
    try:
        document = json.loads(body)
    except ValueError:
        raise StatusError(f"{url}: the body is not JSON: {body[:100]!r}") from None
    return parse_status(document)


def read_status(base_url: str, timeout: float = 1.0) -> GatewayStatus | None:
    """`fetch_status`, or None when the gateway does not answer it properly."""
    try:
        return fetch_status(base_url, timeout)
    except StatusError:
        return None
