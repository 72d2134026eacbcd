"""Scenario 6: with no storage service able to answer, clients get a quick, well-formed 503."""

import time

import pytest

from tests.harness.gateways import STORAGE_NAMES
from tests.harness.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.scenario(6, "all three down")]


@pytest.mark.parametrize("how", ["killed", "unhealthy"])
def test_all_down_answers_503_json_with_retry_after_quickly(stack: Stack, how: str) -> None:
    """Every GET /data answers 503, Content-Type application/json, body {"detail": ...} and a
    Retry-After header; the first within one connect timeout per service plus 1 s, later ones
    (everything known down) within 1 s."""
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
