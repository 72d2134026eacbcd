"""Scenario 6: with no storage service able to answer, clients get a quick, well-formed 503."""

import time
from collections.abc import Callable

import pytest

from tests.harness.gateways import STORAGE_NAMES
from tests.harness.stack import Stack
from toolkit.waiting import wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.scenario(6, "all three down"),
    pytest.mark.several_workers,
]

MARGIN = 1.0
"""Seconds on top of the bound: container networking and a busy 2-core box."""


@pytest.mark.parametrize("how", ["killed", "unhealthy"])
def test_all_down_answers_503_json_with_retry_after_quickly(
    stack: Stack, deviation: Callable[[str], None], how: str
) -> None:
    """Every GET /data answers 503, Content-Type application/json, body {"detail": ...} and a
    Retry-After header; the first within one connect timeout per service plus 1 s, later ones
    (everything known down) within 1 s."""
    deviation("all-down-waits-for-an-upstream")
    if how == "killed":
        deviation("all-killed-retried-per-request")
    for name in STORAGE_NAMES:
        if how == "killed":
            stack.kill(name)
        else:
            stack.set_fault(name, "unavailable")
    first_bound = len(STORAGE_NAMES) * stack.spec.timing.connect_timeout + 1.0

    for attempt in range(5):
        started = time.monotonic()
        response = stack.get("/data")
        elapsed = time.monotonic() - started

        assert response.status_code == 503, response.text[:200]
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert isinstance(body.get("detail"), str), body
        assert body["detail"], body
        assert response.headers.get("retry-after", "").isdigit(), response.headers
        assert elapsed <= (first_bound if attempt == 0 else 1.0), (
            f"request {attempt + 1} took {elapsed:.2f}s"
        )


def test_the_first_service_back_after_a_full_outage_serves_within_a_second(
    stack: Stack, measure: Callable[[str, str], None], deviation: Callable[[str], None]
) -> None:
    """Every service fails long enough to be taken out of rotation; the first one to come back
    serves the next requests within a second, not after FAIL_TIMEOUT or a health-check rise:
    with nothing in rotation a gateway must try the services anyway (ours tries each, as
    Envoy's panic mode does)."""
    deviation("first-back-after-outage")
    for name in STORAGE_NAMES:
        stack.set_fault(name, "unavailable")
    for _ in range(2 * len(STORAGE_NAMES)):
        assert stack.get("/data").status_code == 503
    stack.set_fault("storage2", "normal")
    back = time.monotonic()
    # Waited for long enough to measure a gateway that takes FAIL_TIMEOUT, then judged.
    served_at = wait_until(
        lambda: time.monotonic() if stack.get("/data").status_code == 200 else None,
        timeout=stack.spec.timing.fail_timeout + MARGIN,
        interval=0.05,
        what="a 200 from the service that came back",
    )
    measure("6. first 2xx after the first service is back (s)", f"{served_at - back:.2f}")
    assert served_at - back <= 1.0
