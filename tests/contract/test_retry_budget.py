"""Scenario 15: the retry budget, a storage-wide brown-out is not multiplied (issue 19).

Envoy's retry budget is the reference: retries at once are limited to RETRY_BUDGET_PERCENT of
the requests in flight (at least RETRY_BUDGET_MIN). Every storage service is slow (100 ms) and
fails every second request (`flaky`); ten clients send 100 requests at once. Counted on the
storage services: requests reaching them per client request. With three tries and no budget
that is about 1.75; with a 20% budget, about 1.2.
"""

from collections.abc import Callable

import pytest

from tests.harness.gateways import STORAGE_NAMES
from tests.harness.load import Load
from tests.harness.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.scenario(15, "retry budget, brown-out")]

CLIENTS = 10
PER_CLIENT = 10
DELAY_MS = 100
BUDGET_PERCENT = 20
RATIO_BOUND = 1.4
"""Storage requests per client request allowed with a 20% budget (1.75 without one)."""


def test_a_brown_out_gets_at_most_the_budgets_retries(
    stack: Stack, deviation: Callable[[str], None], measure: Callable[[str, str], None]
) -> None:
    """All three services slow and failing half: with RETRY_BUDGET_PERCENT=20 the storage
    services get at most 1.4 requests per client request."""
    deviation("retry-budget")
    # Passive checks would take the failing services out and hide the retries: not counted.
    stack.use_settings(RETRY_BUDGET_PERCENT=BUDGET_PERCENT, RETRY_BUDGET_MIN=1, MAX_FAILS=1000)
    for name in STORAGE_NAMES:
        stack.set_fault(name, "flaky", delay_ms=DELAY_MS)
    stack.reset_received()

    with Load(stack.base_url, CLIENTS, per_client=PER_CLIENT) as load:
        results = load.finish()

    assert len(results) == CLIENTS * PER_CLIENT
    reached = sum(stack.received(name) for name in STORAGE_NAMES)
    ratio = reached / len(results)
    measure("15. storage requests per client request", f"{ratio:.2f}")
    assert ratio <= RATIO_BOUND, f"{reached} storage requests for {len(results)} client requests"
