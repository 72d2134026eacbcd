"""Scenario 5: a failed service that comes back is serving again within a stated bound.

The two gateways recover differently, and the test states both:
- active health checks (ours): back after HEALTH_RISE good probes, about rise x interval,
  with no client traffic at all;
- passive only (nginx OSS has no active checks): nginx does not look at a failed server again
  until FAIL_TIMEOUT has passed, and then only because a client request is sent to it.
The service "comes back" by leaving the `unavailable` fault mode, so the moment it is healthy
again is known exactly and the measured time is the gateway's alone.
"""

import time
from collections import Counter
from collections.abc import Callable

import pytest

from tests.harness.gateways import STORAGE_NAMES
from tests.harness.stack import Stack
from toolkit.serving import instances_served
from toolkit.waiting import wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.scenario(5, "recovery"),
    pytest.mark.several_workers,
]

MARGIN = 1.5
"""Seconds on top of the configured bound: probe phase, container networking, a busy box."""


def _active_recovery_seen_by_traffic(
    stack: Stack, measure: Callable[[str, str], None], deviation: Callable[[str], None]
) -> None:
    """Active checks but no /status: out and back are judged by whether storage2 serves a
    rotation of sequential requests (which may also take it out passively; bringing it back
    is the active checks' job)."""
    deviation("passive-mark-outlasts-recovery")
    timing = stack.spec.timing
    interval = timing.health_interval
    assert interval is not None
    # Out once its checks failed: a full rotation of 200s without it.
    wait_until(
        lambda: set(_rotation(stack) or ()) == {"storage1", "storage3"},
        timeout=interval * (timing.health_fall + 1) + MARGIN,
        what="storage2 to leave rotation",
    )
    stack.set_fault("storage2", "normal")
    back = time.monotonic()
    bound = interval * (timing.health_rise + 1) + MARGIN
    # Waited for long enough to measure a gateway whose passive mark outlasts its active
    # checks (FAIL_TIMEOUT), then judged against the active bound.
    served_at = wait_until(
        lambda: time.monotonic() if "storage2" in (_rotation(stack) or ()) else None,
        timeout=timing.fail_timeout + bound,
        what="storage2 to serve a request again",
    )
    recovered = served_at - back
    measure("5. recovery (s)", f"{recovered:.2f} (active, seen by traffic)")
    assert recovered <= bound


def _rotation(stack: Stack) -> Counter[str] | None:
    """Who served one rotation's worth of sequential requests (None if any was not a 200)."""
    return instances_served(stack.base_url, len(STORAGE_NAMES))


def test_recovered_service_serves_again_within_the_stated_bound(
    stack: Stack, measure: Callable[[str, str], None], deviation: Callable[[str], None]
) -> None:
    """storage2 fails, is taken out, comes back healthy, and is serving again within
    rise x interval (active checks, no traffic) or FAIL_TIMEOUT (passive, driven by traffic)."""
    timing = stack.spec.timing
    stack.set_fault("storage2", "unavailable")

    if stack.spec.active_health and not stack.spec.has_status:
        _active_recovery_seen_by_traffic(stack, measure, deviation)
        return

    if stack.spec.active_health:
        interval = timing.health_interval
        assert interval is not None
        stack.wait_service_status(
            "storage2", "unavailable", timeout=interval * (timing.health_fall + 1) + MARGIN
        )
        stack.set_fault("storage2", "normal")
        bound = interval * (timing.health_rise + 1) + MARGIN
        # No GET /data until /status says it is back: recovery must not need client traffic.
        recovered = stack.wait_service_status("storage2", "available", timeout=bound)
        assert "storage2" in stack.instances(3), "back in /status but not in rotation"
        measure("5. recovery (s)", f"{recovered:.2f} (no traffic)")
        assert recovered <= bound
        return

    # Passive only: a request has to fail on storage2 to take it out. Three sequential requests
    # cover a full rotation, so storage2 was tried (and failed over) no earlier than `failed_at`.
    failed_at = time.monotonic()
    stack.instances(3)
    stack.set_fault("storage2", "normal")
    back = time.monotonic()
    # nginx cannot recover without traffic; it tries storage2 again once FAIL_TIMEOUT has passed
    # since the failure, so traffic is sent (every 50 ms) until storage2 serves a request.
    served_at = wait_until(
        lambda: time.monotonic() if "storage2" in stack.instances(1) else None,
        timeout=timing.fail_timeout + MARGIN,
        interval=0.05,
        what="storage2 to serve a request again",
    )
    recovered = served_at - back
    measure("5. recovery (s)", f"{recovered:.2f} (traffic-driven)")
    # nginx compares FAIL_TIMEOUT against its cached clock in whole seconds, so a failed server
    # stays out between FAIL_TIMEOUT and FAIL_TIMEOUT + 1 s.
    out_for = served_at - failed_at
    assert timing.fail_timeout - 0.1 <= out_for <= timing.fail_timeout + MARGIN, (
        f"storage2 was out for {out_for:.2f}s; FAIL_TIMEOUT is {timing.fail_timeout}s"
    )
