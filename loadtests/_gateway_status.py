"""The gateway's own view of its storage services, from `GET /status` (both gateways have it)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit


def fetch_status(host: str, timeout_s: float = 1.0) -> dict[str, Any] | None:
    """The parsed `/status` body, or None when the gateway does not answer it properly."""
    try:
        # `host` is the gateway under test, given by the operator on the command line.
        url = f"{host.rstrip('/')}/status"
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # nosec B310
            body = json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None
    return body if isinstance(body, dict) else None


def service_status(status: dict[str, Any], service: str) -> str | None:
    """`available`/`unavailable` for the storage service whose URL host is `service`."""
    for entry in status.get("services") or []:
        if isinstance(entry, dict) and urlsplit(str(entry.get("url", ""))).hostname == service:
            value = entry.get("status")
            return str(value) if value is not None else None
    return None
