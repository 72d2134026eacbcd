"""Scenarios 2-4: one storage service fails; clients must not notice, and it leaves rotation.

Every request is sequential, so "taken out of rotation" is checked where it happens: on the
private network, by counting the requests the gateway still sends to the failed service.
"""

import time
from collections import Counter
from collections.abc import Callable

import pytest

from tests.harness.stack import Stack
from tests.harness.wire import Wire

pytestmark = pytest.mark.integration

MARGIN = 1.0
"""Seconds allowed on top of a gateway's own timeouts (container networking, a busy 2-core box)."""


def timed_instances(stack: Stack, count: int) -> list[tuple[str, float]]:
    """Sequential GET /data; every one must succeed. Returns (instance, seconds) per request."""
    results = []
    for _ in range(count):
        started = time.monotonic()
        response = stack.get("/data")
        elapsed = time.monotonic() - started
        assert response.status_code == 200, (
            f"client saw {response.status_code}: {response.text[:200]}"
        )
        results.append((str(response.json()["instance"]), elapsed))
    return results


@pytest.mark.scenario(2, "one service killed")
@pytest.mark.several_workers
@pytest.mark.parametrize("how", ["killed", "disconnected"])
def test_killed_service_costs_clients_nothing_and_the_others_share_evenly(
    stack: Stack, how: str
) -> None:
    """With storage2 killed (or cut off the network), all 30 requests succeed (retried within
    the request) and storage1/storage3 share them evenly. A killed service costs at most a
    connect timeout; a partitioned one can cost a read timeout, because a pooled keep-alive
    connection to it cannot tell a vanished peer from a slow one."""
    timing = stack.spec.timing
    if how == "killed":
        stack.kill("storage2")
        bound = timing.connect_timeout + MARGIN
    else:
        stack.disconnect("storage2")
        bound = timing.read_timeout + timing.connect_timeout + MARGIN

    results = timed_instances(stack, 30)

    counts = Counter(instance for instance, _ in results)
    assert counts["storage2"] == 0
    assert abs(counts["storage1"] - counts["storage3"]) <= 2, counts
    slowest = max(elapsed for _, elapsed in results)
    assert slowest <= bound, f"slowest request {slowest:.2f}s"


@pytest.mark.scenario(3, "one service answering 500/503")
@pytest.mark.parametrize("mode", ["error", "unavailable"])
def test_failing_service_is_hidden_and_taken_out(
    stack: Stack, wire: Callable[[], Wire], deviation: Callable[[str], None], mode: str
) -> None:
    """storage2 answers 500 (`error`) or 503 (`unavailable`, /health too) on /data: clients
    only see 200s, and after one failed attempt (MAX_FAILS=1) the gateway stops sending it
    requests."""
    deviation("5xx-answer-not-retried")
    if mode == "error":
        deviation("retried-5xx-kept-in-rotation")
    out_by_checks = stack.spec.deviations.get("retried-503-out-by-active-checks")
    stack.set_fault("storage2", mode)

    if mode == "unavailable" and out_by_checks is not None:
        # Whether such a gateway sends storage2 one request or several before its active
        # checks fail is a race, so a strict xfail of the contract's bound would be flaky:
        # check the bound it declares instead, then report the deviation.
        _taken_out_once_its_checks_fail(stack, wire)
        pytest.xfail(f"{stack.spec.name}: {out_by_checks}")

    with wire() as seen:
        results = timed_instances(stack, 15)

    counts = Counter(instance for instance, _ in results)
    assert counts["storage2"] == 0
    assert len(seen.data_requests("storage1")) > 0, "capture saw no traffic at all"
    # 15 requests take well under FAIL_TIMEOUT, so a service that was taken out gets no more.
    attempts = len(seen.data_requests("storage2"))
    assert attempts <= 1, f"storage2 still received {attempts} of 15 requests"


def _taken_out_once_its_checks_fail(stack: Stack, wire: Callable[[], Wire]) -> None:
    """Requests all succeed while `HEALTH_FALL` probes fail, and storage2 gets none after."""
    timing = stack.spec.timing
    assert timing.health_interval is not None, "this deviation needs active checks"
    deadline = time.monotonic() + timing.health_fall * timing.health_interval + MARGIN
    while time.monotonic() < deadline:
        timed_instances(stack, 1)

    with wire() as seen:
        results = timed_instances(stack, 15)

    assert "storage2" not in {instance for instance, _ in results}
    attempts = len(seen.data_requests("storage2"))
    assert attempts == 0, f"storage2 still received {attempts} of 15 requests after its checks"


@pytest.mark.scenario(4, "one service hanging")
@pytest.mark.parametrize("how", ["paused container", "hang fault"])
def test_hanging_service_delays_at_most_one_request_by_the_read_timeout(
    stack: Stack, deviation: Callable[[str], None], how: str
) -> None:
    """storage2 accepts connections but never answers: every request still succeeds within the
    read timeout plus a margin, and only the first one pays that timeout; then it is out."""
    if how == "paused container":
        stack.pause("storage2")
    else:
        # Its /health still answers: only a passive check can take it out.
        deviation("retried-timeout-kept-in-rotation")
        stack.set_fault("storage2", "hang")
    timing = stack.spec.timing

    results = timed_instances(stack, 9)

    assert "storage2" not in {instance for instance, _ in results}
    durations = [elapsed for _, elapsed in results]
    assert max(durations) <= timing.read_timeout + timing.connect_timeout + MARGIN, durations
    waited = [d for d in durations if d >= timing.read_timeout * 0.9]
    assert len(waited) <= 1, f"{len(waited)} requests waited for storage2: {durations}"
