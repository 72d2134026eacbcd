"""Scenario 12: least-request balancing against round robin, one storage service slowed (issue 19).

With storage2 answering 300 ms late and six clients sending at once, a least-request balancer
(BALANCING=least_request: our power of two choices, HAProxy `random(2)`, nginx and Caddy
`least_conn`) sends it measurably less than a third, because it holds requests the others have
long answered; round robin (the default, the seed's contract) still gives it exactly a third.
"""

from collections import Counter
from collections.abc import Callable

import pytest

from tests.harness.gateways import STORAGE_NAMES
from tests.harness.load import Load
from tests.harness.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.scenario(12, "least request, one slowed")]

CLIENTS = 6
PER_CLIENT = 15
"""90 requests in all: 30 each under round robin."""
DELAY_MS = 300
LEAST_REQUEST_SHARE = 0.2
"""The most of all requests a slowed service may get under least request (a third is even)."""


def _shares(stack: Stack) -> Counter[str | None]:
    stack.set_fault("storage2", "slow", delay_ms=DELAY_MS)
    with Load(stack.base_url, CLIENTS, per_client=PER_CLIENT) as load:
        results = load.finish()
    failed = [s for s in results if s.status != 200]
    assert failed == [], failed[:5]
    assert len(results) == CLIENTS * PER_CLIENT
    return Counter(s.instance for s in results)


@pytest.mark.several_workers
def test_least_request_sends_the_slowed_service_less_and_round_robin_a_strict_third(
    stack: Stack, deviation: Callable[[str], None], measure: Callable[[str, str], None]
) -> None:
    """storage2 300 ms slower: the default round robin does not look at load (30 of 90 each,
    storage2 included); with BALANCING=least_request storage2 gets under 20% of 90 requests.
    One test for both, so the stack is reset once. With several workers too: the requests in
    flight they compare must be the gateway's, not one worker's."""
    round_robin = _shares(stack)
    assert round_robin == dict.fromkeys(STORAGE_NAMES, CLIENTS * PER_CLIENT // 3), round_robin

    deviation("least-request")
    stack.use_settings(BALANCING="least_request")
    shares = _shares(stack)

    share = shares["storage2"] / (CLIENTS * PER_CLIENT)
    measure("12. slowed one's share, least request", f"{share:.0%}")
    assert share < LEAST_REQUEST_SHARE, shares
