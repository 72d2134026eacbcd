"""Scenario 13: slow start, a service back in rotation ramps up (issue 19).

HAProxy's `slowstart` and Envoy's slow start are the references: over its first SLOW_START
seconds back, a returning service gets a share growing from small to full, not its full third
at once. A linear ramp gives it about a fifth over that window (a third without slow start).
"""

import time
from collections import Counter
from collections.abc import Callable

import pytest

from tests.harness.stack import Stack
from toolkit.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.scenario(13, "slow start")]

SLOW_START = 3.0
SHARE_BOUND = 0.27
"""The most of the requests over the first SLOW_START seconds the returning service may get:
well under an even third, above the fifth a linear ramp gives."""


def _serving(stack: Stack, count: int) -> Counter[str | None]:
    """Who served `count` sequential requests (None: an error, for a gateway that passes a
    storage service's 503 on)."""
    served: Counter[str | None] = Counter()
    for _ in range(count):
        response = stack.get("/data")
        served[response.json().get("instance") if response.status_code == 200 else None] += 1
    return served


def test_a_returning_service_ramps_up_over_slow_start(
    stack: Stack, deviation: Callable[[str], None], measure: Callable[[str, str], None]
) -> None:
    """storage2 goes out (`unavailable`) and comes back with SLOW_START=3: over its first 3 s
    back it serves under 27% of sequential requests."""
    deviation("slow-start")
    stack.use_settings(SLOW_START=SLOW_START)
    timing = stack.spec.timing
    out_within = (timing.health_interval or 0) * timing.health_fall + timing.fail_timeout + 5
    # Out and back as the gateway sees it: its /status when its own checks decide, else
    # traffic (a gateway that retries the 503 elsewhere hides storage2 from clients at once).
    by_status = stack.spec.has_status and stack.spec.active_health
    stack.set_fault("storage2", "unavailable")
    if by_status:
        stack.wait_service_status("storage2", "unavailable", timeout=out_within)
    else:
        wait_until(
            lambda: _serving(stack, 6)["storage2"] == 0, timeout=out_within, what="storage2 out"
        )

    stack.set_fault("storage2", "normal")
    if by_status:
        stack.wait_service_status("storage2", "available", timeout=out_within)
    else:
        wait_until(
            lambda: _serving(stack, 1)["storage2"] > 0, timeout=out_within, what="storage2 back"
        )
    served: Counter[str | None] = Counter()
    window_ends = time.monotonic() + SLOW_START
    while time.monotonic() < window_ends:
        served += _serving(stack, 1)

    share = served["storage2"] / sum(served.values())
    measure("13. returning one's share, first SLOW_START s", f"{share:.0%}")
    assert served[None] == 0, served
    assert 0 < share < SHARE_BOUND, served
