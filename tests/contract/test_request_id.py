"""Scenario 8: X-Request-ID is echoed, generated when missing or invalid, and reaches storage."""

import re
from collections.abc import Callable

import pytest

from tests.harness.stack import Stack
from tests.harness.wire import Wire

pytestmark = [pytest.mark.integration, pytest.mark.scenario(8, "X-Request-ID")]

VALID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def test_generated_when_absent(stack: Stack) -> None:
    """Without a client id every response carries a fresh, valid one."""
    ids = [stack.get("/data").headers.get("x-request-id", "") for _ in range(3)]

    assert all(VALID.fullmatch(i) for i in ids), ids
    assert len(set(ids)) == 3, ids


def test_client_id_is_echoed_and_reaches_the_storage_service(
    stack: Stack, wire: Callable[[], Wire]
) -> None:
    """A valid client id comes back unchanged, once, and is the id sent to the storage service."""
    request_id = "contract-8.echo:0001"

    with wire() as seen:
        response = stack.get("/data", headers={"X-Request-ID": request_id})

    assert response.status_code == 200
    assert response.headers.get_list("x-request-id") == [request_id]
    served_by = response.json()["instance"]
    sent = b"".join(seen.data_requests(served_by)).lower()
    assert f"x-request-id: {request_id}".lower().encode() in sent, sent[:500]


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "semi;colon", "<script>"])
def test_invalid_client_id_is_replaced(stack: Stack, bad: str) -> None:
    """An id outside 1..128 of [A-Za-z0-9._:-] is not echoed; a generated valid one is."""
    response = stack.get("/data", headers={"X-Request-ID": bad})

    assert response.status_code == 200
    echoed = response.headers.get_list("x-request-id")
    assert len(echoed) == 1, echoed
    assert echoed[0] != bad
    assert VALID.fullmatch(echoed[0]), echoed
