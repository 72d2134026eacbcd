"""The storage service's fault endpoint (`PUT /admin/fault`), called one way by every tool.

The endpoint is off unless the service runs with ENABLE_FAULT_INJECTION=true; a 404 means
exactly that, and the error says so.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from storage_service.faults import FaultMode

FAULT_PATH = "/admin/fault"
REQUESTS_PATH = "/admin/requests"


class FaultError(Exception):
    """A fault could not be injected or undone; the message says why in one line."""


def fault_request(
    base_url: str, mode: FaultMode | str | None, delay_ms: int | None = None, timeout: float = 5.0
) -> int:
    """PUT a mode (GET the current one when `mode` is None); the status code.

    Raises OSError when nothing answers at `base_url`.
    """
    body: dict[str, object] = {"mode": str(mode)}
    if delay_ms is not None:
        body["delay_ms"] = delay_ms
    request = urllib.request.Request(
        base_url.rstrip("/") + FAULT_PATH,
        data=None if mode is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="GET" if mode is None else "PUT",
    )
    try:
        # An http:// URL of a storage service the tool itself started or was pointed at.
        with urllib.request.urlopen(request, timeout=timeout) as response:  # nosec B310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def check_fault_status(service: str, status: int | None, detail: str = "") -> None:
    """Raise FaultError unless `status` is 200, naming the cause (the endpoint off: 404)."""
    if status == 200:
        return
    if status == 404:
        raise FaultError(
            f"fault injection is disabled on {service}; "
            "deploy with ENABLE_FAULT_INJECTION=true to run this scenario"
        )
    raise FaultError(f"PUT {FAULT_PATH} on {service} failed: {status or detail or 'no answer'}")


def set_fault(
    service: str,
    base_url: str,
    mode: FaultMode | str,
    delay_ms: int | None = None,
    timeout: float = 5.0,
) -> None:
    """Switch one storage service to `mode`; FaultError when it does not take it."""
    try:
        status = fault_request(base_url, mode, delay_ms, timeout)
    except OSError as error:
        raise FaultError(f"PUT {FAULT_PATH} on {service}: no answer ({error})") from None
    check_fault_status(service, status)


def received(service: str, base_url: str, timeout: float = 5.0) -> tuple[int, str | None]:
    """The `/data` requests one storage service received since start or `reset_received`,
    and the last one's `traceparent` header; FaultError when it cannot tell."""
    try:
        with urllib.request.urlopen(base_url.rstrip("/") + REQUESTS_PATH, timeout=timeout) as r:  # nosec B310
            body = json.loads(r.read())
    except urllib.error.HTTPError as error:
        check_fault_status(service, error.code)
        raise  # unreachable: check_fault_status raises for every non-200
    except OSError as error:
        raise FaultError(f"GET {REQUESTS_PATH} on {service}: no answer ({error})") from None
    parent = body.get("traceparent")
    return int(body["data"]), parent if isinstance(parent, str) else None


def reset_received(service: str, base_url: str, timeout: float = 5.0) -> None:
    """Count `/data` requests from zero again on one storage service."""
    request = urllib.request.Request(base_url.rstrip("/") + REQUESTS_PATH, method="DELETE")
    try:
        with urllib.request.urlopen(request, timeout=timeout):  # nosec B310
            return
    except urllib.error.HTTPError as error:
        check_fault_status(service, error.code)
    except OSError as error:
        raise FaultError(f"DELETE {REQUESTS_PATH} on {service}: no answer ({error})") from None
