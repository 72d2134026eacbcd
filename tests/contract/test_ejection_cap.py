"""Scenario 14: the ejection cap, a failing pool is not emptied by passive checks (issue 19).

Envoy's `max_ejection_percent` is the reference: with MAX_EJECTION_PERCENT=50 and two of the
three storage services answering 500 on /data (their /health stays green), passive checks may
take one of them out; the other stays in rotation, its requests retried elsewhere. Counted on
the storage services themselves: a service taken out for FAIL_TIMEOUT gets at most the one
request that failed.
"""

from collections.abc import Callable

import pytest

from tests.harness.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.scenario(14, "ejection cap")]

REQUESTS = 30
KEPT_BOUND = 8
"""Requests the two failing services must get between them: the one left in rotation has its
turn in about one request of two (10 is a third of 30; a banned one gets 1)."""


def test_at_most_half_of_the_pool_is_taken_out_by_passive_checks(
    stack: Stack, deviation: Callable[[str], None]
) -> None:
    """storage1 and storage2 answer 500 with MAX_EJECTION_PERCENT=50: all 30 requests succeed
    and the failing services keep getting requests, so only one of the two was taken out."""
    deviation("5xx-answer-not-retried")
    deviation("ejection-cap")
    stack.use_settings(MAX_EJECTION_PERCENT=50)
    stack.reset_received()
    for name in ("storage1", "storage2"):
        stack.set_fault(name, "error")

    served = stack.tally(REQUESTS)

    assert served == {"storage3": REQUESTS}, served
    kept = stack.received("storage1") + stack.received("storage2")
    assert kept >= KEPT_BOUND, f"the failing services got {kept} requests: both taken out"
