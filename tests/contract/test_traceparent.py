"""Scenario 16: W3C trace context reaches the storage service (issue 19).

A client's valid `traceparent` goes on with its trace id (a gateway that records spans of its
own may give it a new parent id); without one, or with an invalid one, the gateway starts a
trace. Read back from the storage service's own record of the last header it got.
"""

import re
from collections.abc import Callable

import pytest

from tests.harness.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.scenario(16, "traceparent")]

TRACEPARENT = re.compile(r"00-(?!0{32})([0-9a-f]{32})-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")
CLIENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _sent_to_storage(stack: Stack, headers: dict[str, str]) -> str | None:
    stack.reset_received()
    response = stack.get("/data", headers=headers)
    assert response.status_code == 200, response.text[:200]
    return stack.traceparent_received(str(response.json()["instance"]))


def test_a_clients_trace_is_continued(stack: Stack) -> None:
    """The storage service gets a valid traceparent with the client's trace id."""
    sent = _sent_to_storage(stack, {"traceparent": CLIENT})

    match = TRACEPARENT.fullmatch(sent or "")
    assert match, sent
    assert match.group(1) == CLIENT.split("-")[1], sent


@pytest.mark.parametrize("client", [None, "01-not-a-trace"], ids=["absent", "invalid"])
def test_a_trace_is_started_when_the_client_has_none(
    stack: Stack, deviation: Callable[[str], None], client: str | None
) -> None:
    """Without a (valid) traceparent the storage service still gets a valid one, a fresh trace
    id for every request."""
    deviation("traceparent-created")
    headers = {} if client is None else {"traceparent": client}

    first, second = (_sent_to_storage(stack, headers) for _ in range(2))

    first_match = TRACEPARENT.fullmatch(first or "")
    second_match = TRACEPARENT.fullmatch(second or "")
    assert first_match, first
    assert second_match, second
    assert first_match.group(1) != second_match.group(1), (first, second)
