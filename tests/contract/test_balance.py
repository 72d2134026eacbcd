"""Scenario 1: round-robin, as nginx's and Traefik's balancer tests define it."""

from collections import Counter
from collections.abc import Callable

import pytest

from tests.harness.gateways import STORAGE_NAMES
from tests.harness.stack import Stack

pytestmark = [
    pytest.mark.integration,
    pytest.mark.scenario(1, "balance: strict rotation"),
    pytest.mark.several_workers,
]


def test_thirty_requests_are_shared_ten_each_in_strict_rotation(
    stack: Stack, deviation: Callable[[str], None]
) -> None:
    """30 sequential GET /data: exactly 10 per storage service, each cycle in the same order.
    With several workers each request is a new connection, landing on whichever worker the
    kernel picks: one rotation for the gateway, not one per worker."""
    deviation("strict-rotation")
    served = stack.instances(30)

    assert Counter(served) == dict.fromkeys(STORAGE_NAMES, 10), served
    assert len(set(served[:3])) == 3, served
    assert served == served[:3] * 10, f"not a strict rotation: {served}"
