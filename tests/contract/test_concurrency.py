"""Scenario 9: 200 concurrent requests while a storage service is killed under them."""

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from tests.harness.gateways import STORAGE_NAMES
from tests.harness.stack import Stack
from tests.harness.wire import Capture, Wire
from toolkit.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.scenario(9, "200 concurrent, one killed")]

REQUESTS = 200
DELAY_MS = 1000
"""Every storage service answers after 1 s, so all 200 requests are in flight at once and the
kill lands on requests that storage2 has accepted but not answered."""
BURST_START_BOUND = 10.0
"""Seconds the client may take before storage2 sees the first request of the burst."""
KILL_WITHIN = 0.5
"""Fraction of DELAY_MS after storage2's first request by which the kill is sent: the rest is
left for `docker kill` to land before storage2 could answer."""
FAIRNESS_BOUND = 10
"""Requests a survivor may serve above an even split of all 200 between the two survivors."""


async def _burst(base_url: str, count: int) -> list[httpx.Response | BaseException]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0) as client:
        return await asyncio.gather(
            *(client.get("/data") for _ in range(count)), return_exceptions=True
        )


def _wait_for_kill_moment(seen: Capture) -> None:
    """Return once storage2 holds part of the burst (seen on the network), well before it answers.

    The clock starts at storage2's first request, not at the burst's start: a busy machine may
    take over a second just to open 200 connections, and only storage2's own answer matters.
    So: a tenth of the burst, or whatever storage2 holds once half its delay has passed.
    """
    wait_until(
        lambda: bool(seen.data_requests("storage2")),
        timeout=BURST_START_BOUND,
        interval=0.01,
        what="storage2 to receive its first request of the burst",
    )
    first = time.monotonic()
    kill_by = first + DELAY_MS / 1000 * KILL_WITHIN
    wait_until(
        lambda: (
            len(seen.data_requests("storage2")) >= REQUESTS // 10 or time.monotonic() >= kill_by
        ),
        timeout=DELAY_MS / 1000,
        interval=0.01,
        what="storage2 to receive a tenth of the burst",
    )


def test_no_client_error_and_fair_shares_when_a_service_dies_mid_burst(
    stack: Stack, wire: Callable[[], Wire]
) -> None:
    """All 200 answers are 200 although storage2 dies holding part of them (the gateway
    retries those elsewhere), and neither survivor serves more than half plus a small bound."""
    for name in STORAGE_NAMES:
        stack.set_fault(name, "slow", delay_ms=DELAY_MS)

    with wire() as seen:

        async def scenario() -> list[httpx.Response | BaseException]:
            burst = asyncio.create_task(_burst(stack.base_url, REQUESTS))
            await asyncio.to_thread(_wait_for_kill_moment, seen)
            await asyncio.to_thread(stack.kill, "storage2")
            return await burst

        results = asyncio.run(scenario())

    held = len(seen.data_requests("storage2"))
    failures = [
        r if isinstance(r, BaseException) else f"{r.status_code} {r.text[:80]}"
        for r in results
        if isinstance(r, BaseException) or r.status_code != 200
    ]
    assert not failures, f"{len(failures)} client errors, e.g. {failures[:3]!r}"
    counts = Counter(str(r.json()["instance"]) for r in results if isinstance(r, httpx.Response))
    assert counts["storage2"] == 0, f"storage2 answered after being killed? {counts}"
    fair = math.ceil(REQUESTS / 2)
    assert max(counts.values()) <= fair + FAIRNESS_BOUND, (
        f"{counts} (storage2 held {held} when killed)"
    )
