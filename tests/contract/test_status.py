"""Scenario 7: /status lists every storage service with the agreed fields, and tells the truth."""

from collections.abc import Callable
from datetime import datetime

import pytest

from tests.harness.gateways import STORAGE_NAMES
from tests.harness.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.scenario(7, "/status")]

FIELDS = {
    "url",
    "name",
    "address",
    "status",
    "last_checked",
    "last_check_latency_ms",
    "consecutive_failures",
    "requests_served",
}
OPTIONAL = {"weight", "in_flight", "slow_start_share"}
"""Fields a gateway may add for issue 19's features (docs/contract.md): its weight, attempts in
flight (least request, or an admin API that drains), the share of a backend in its slow start."""


@pytest.fixture(autouse=True)
def _needs_status(deviation: Callable[[str], None]) -> None:
    """A gateway without /status fails every check here, as a declared deviation."""
    deviation("no-status")


def test_status_lists_all_services_with_the_agreed_fields(stack: Stack) -> None:
    """Three services in STORAGE_SERVICES order, all available, each with exactly the agreed
    fields and types (requests_served is null where the gateway cannot count; the optional ones
    of issue 19 may be there too), and the address each name resolved to."""
    body = stack.status()

    assert body["total"] == 3
    assert body["available"] == 3
    assert [s["url"] for s in body["services"]] == [f"http://{n}:8000" for n in STORAGE_NAMES]
    for name, service in zip(STORAGE_NAMES, body["services"], strict=True):
        assert FIELDS <= set(service) <= FIELDS | OPTIONAL, service
        assert isinstance(service.get("weight", 1), int), service
        assert isinstance(service.get("in_flight", 0), int), service
        assert 0 <= service.get("slow_start_share", 1) <= 1, service
        # What the gateway routes to: the name it resolved and the container's address.
        assert service["name"] == name, service
        assert service["address"] == f"{stack.storages[name].ip}:8000", service
        assert service["status"] == "available"
        if service["last_checked"] is not None:
            assert service["last_checked"].endswith("Z"), service
            datetime.fromisoformat(service["last_checked"])
        latency = service["last_check_latency_ms"]
        assert latency is None or (isinstance(latency, int | float) and latency >= 0), service
        assert isinstance(service["consecutive_failures"], int), service
        if stack.spec.counts_requests:
            assert isinstance(service["requests_served"], int), service
        else:
            assert service["requests_served"] is None, service


@pytest.mark.several_workers
def test_requests_served_counts_what_each_service_served(stack: Stack) -> None:
    """Where the gateway counts, requests_served grows by exactly what each service served."""
    if not stack.spec.counts_requests:
        pytest.skip(f"{stack.spec.name} does not count requests per service (reports null)")
    before = {s["url"]: s["requests_served"] for s in stack.status()["services"]}

    served = stack.tally(9)

    after = {s["url"]: s["requests_served"] for s in stack.status()["services"]}
    for name in STORAGE_NAMES:
        url = f"http://{name}:8000"
        assert after[url] - before[url] == served[name], (before, after, served)


def test_status_reflects_a_stopped_service_and_its_recovery(
    stack: Stack, deviation: Callable[[str], None]
) -> None:
    """storage3 stopped: /status shows it unavailable (2 of 3) with no client traffic; started
    again: available."""
    deviation("status-needs-traffic")
    timing = stack.spec.timing
    interval = timing.health_interval or 0.0
    down_bound = interval * (timing.health_fall + 1) + 2.0
    up_bound = interval * (timing.health_rise + 1) + 2.0

    stack.stop("storage3")
    stack.wait_service_status("storage3", "unavailable", timeout=down_bound)
    body = stack.status()
    assert body["available"] == 2
    assert [s["status"] for s in body["services"]] == ["available", "available", "unavailable"]
    down = stack.service_status("storage3")
    assert down.consecutive_failures is not None, down
    assert down.consecutive_failures >= 1, down

    stack.start_storage("storage3")
    stack.wait_service_status("storage3", "available", timeout=up_bound)
    assert stack.status()["available"] == 3
