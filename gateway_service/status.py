"""The `/status` document: every storage service's state, in `STORAGE_SERVICES` order."""

from datetime import UTC, datetime
from typing import Any

from gateway_service.backends import Backend, Balancer


def status_document(balancer: Balancer, now: float) -> dict[str, Any]:
    services = [_service(backend, now) for backend in balancer.backends]
    return {
        "available": sum(service["status"] == "available" for service in services),
        "total": len(services),
        "services": services,
    }


def _service(backend: Backend, now: float) -> dict[str, Any]:
    checked = backend.last_checked
    latency = backend.last_check_latency
    return {
        "url": backend.url,
        "status": "available" if backend.available(now) else "unavailable",
        "last_checked": None if checked is None else _iso(checked),
        "last_check_latency_ms": None if latency is None else round(latency * 1000, 3),
        "consecutive_failures": backend.consecutive_failures,
        "requests_served": backend.requests_served,
    }


def _iso(wall_time: float) -> str:
    moment = datetime.fromtimestamp(wall_time, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
