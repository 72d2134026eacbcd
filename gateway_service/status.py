"""The `/status` document: every backend's state, in rotation order (`STORAGE_SERVICES` order,
then each name's addresses sorted).

Each service has the fields the contract suite agrees on (tests/contract/test_status.py); the
options of issue 19 add theirs only when they are on, so the default document is unchanged.
"""

from datetime import UTC, datetime
from typing import Any

from gateway_service.backends import Backend, Balancer
from gateway_service.retry_budget import RetryBudget
from gateway_service.settings import GatewaySettings


def status_document(
    balancer: Balancer,
    now: float,
    settings: GatewaySettings,
    retry_budget: RetryBudget | None = None,
) -> dict[str, Any]:
    services = []
    for backend in balancer.backends:
        service = _service(backend, now)
        if balancer.slow_start:
            # 1.0: its full share; less while it ramps up after coming back.
            service["slow_start_share"] = round(balancer.slow_start_share(backend, now), 3)
        if balancer.counts_in_flight:
            service["in_flight"] = backend.in_flight
        services.append(service)
    document: dict[str, Any] = {
        "available": sum(service["status"] == "available" for service in services),
        "total": len(services),
        "services": services,
        "settings": settings_document(settings),
    }
    if retry_budget is not None:
        active, retrying = retry_budget.in_flight
        document["retry_budget"] = {
            "requests_in_flight": active,
            "retrying": retrying,
            "retries_allowed": int(max(retry_budget.minimum, retry_budget.percent * active / 100)),
            "retries_refused": retry_budget.refused,
        }
    return document


def settings_document(settings: GatewaySettings) -> dict[str, Any]:
    """The settings in effect, by their environment names: what a deployment actually got."""
    values = settings.model_dump()
    values["storage_services"] = [storage.url for storage in settings.storage_services]
    return {name.upper(): value for name, value in values.items()}


def _service(backend: Backend, now: float) -> dict[str, Any]:
    checked = backend.last_checked
    latency = backend.last_check_latency
    return {
        "url": backend.url,
        "name": backend.storage.host,  # what was resolved
        "address": endpoint(backend.address, backend.storage.port),  # where requests go
        "status": _status(backend, now),
        "weight": backend.weight,
        "last_checked": None if checked is None else _iso(checked),
        "last_check_latency_ms": None if latency is None else round(latency * 1000, 3),
        "consecutive_failures": backend.consecutive_failures,
        "requests_served": backend.requests_served,
    }


def _status(backend: Backend, now: float) -> str:
    if backend.draining:
        return "draining"  # the admin API's drain: out of rotation, whatever its health
    return "available" if backend.available(now) else "unavailable"


def endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _iso(wall_time: float) -> str:
    moment = datetime.fromtimestamp(wall_time, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
