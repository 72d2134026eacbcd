"""Response heads: too big, malformed, ambiguous, late, or followed by a response nobody asked
for. A malformed head on the first attempt is retried on the other listener (the upstream
spoils only the first attempt), so the client must get the good answer."""

import asyncio
import time
from collections.abc import Awaitable

import pytest

from tests.hostile.cases import (
    Note,
    carries_poison,
    clean_after,
    describe,
    is_own,
    load,
    new_id,
    owner,
    run,
)
from tests.hostile.client import Got, fetch
from tests.hostile.gateways import SETTINGS, Gateway
from tests.hostile.upstream import POISON, ScriptedUpstream

pytestmark = pytest.mark.hostile

HEALTH_BOUND_S = 0.5
"""/health must answer within this while the gateway deals with a hostile upstream."""


async def _while_probing_health(port: int, work: Awaitable[Got]) -> tuple[Got, float]:
    """Run `work` while /health is asked every 50 ms; the slowest /health answer."""
    latencies: list[float] = []
    stop = asyncio.Event()

    async def probe() -> None:
        while True:
            started = time.monotonic()
            await fetch(port, "/health", timeout_s=15)
            latencies.append(time.monotonic() - started)
            if stop.is_set():
                return
            await asyncio.sleep(0.05)

    prober = asyncio.create_task(probe())
    await asyncio.sleep(0.05)
    try:
        got = await work
    finally:
        stop.set()
        await prober
    return got, max(latencies)


@pytest.mark.hostile_case(11, "50 MB response header")
def test_huge_header_is_refused_without_stalling(gw: Gateway, note: Note) -> None:
    request_id = new_id("huge")
    work = fetch(gw.port, "/data?case=huge_header&mb=50", request_id, timeout_s=30)
    got, slowest = run(_while_probing_health(gw.port, work))
    note.got = f"{got.summary()} in {got.elapsed_s:.1f} s, /health <= {slowest:.2f} s"
    assert got.status == 503, "a 50 MB header must be refused, not forwarded"
    assert slowest < HEALTH_BOUND_S, f"/health took {slowest:.2f} s meanwhile: the loop stalled"
    assert not run(clean_after(gw.port))


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(
            "/data?case=many_headers&count=1000",
            marks=pytest.mark.hostile_case(12, "1000 response headers"),
            id="1000-headers",
        ),
        pytest.param(
            "/data?case=long_status&kb=100",
            marks=pytest.mark.hostile_case(13, "100 KB status line"),
            id="100kb-status-line",
        ),
    ],
)
def test_oversized_head_is_refused(gw: Gateway, note: Note, target: str) -> None:
    """A response head beyond any sane limit is the upstream's failure (503), as a request head
    beyond 32 KiB or 100 headers is the client's (431)."""
    got = run(fetch(gw.port, target, new_id("oversized")))
    note.got = f"{got.summary()}, {len(got.headers)} headers"
    assert got.status == 503, "an oversized response head must be refused, not forwarded"
    assert not run(clean_after(gw.port))


def _common_invariants(got: Got, request_id: str) -> None:
    """What no gateway may let through, whatever it does with a malformed head."""
    for name, value in got.headers:
        assert not any(c in value for c in (b"\x00", b"\r", b"\n")), f"{name!r}: {value!r}"
        assert b"injected" not in value, f"a header was split: {name!r}: {value!r}"
    assert len(got.values("content-length")) <= 1, got.values("content-length")
    assert not (got.values("content-length") and got.values("transfer-encoding"))
    named = owner(got)
    assert named in (None, request_id), f"another request's data: {named}"


def _declared_behaviour(key: str, got: Got, kind: str) -> None:
    """What nginx does instead, checked exactly, so a change in it shows."""
    poison = POISON + b"-"
    if key == "http09":
        assert got.status is None, got.summary()
        assert got.raw_start.startswith(b"HELLO"), got.summary()
    elif key == "status_out_of_range":
        assert got.status == int(kind), got.summary()
        assert got.body.startswith(poison)
    elif key == "ctl_relayed":
        assert got.status == 200, got.summary()
        assert b"\x01" in (got.value("x-bad") or b"")
        assert got.body.startswith(poison)
    elif key == "last_content_length":
        assert got.status == 200, got.summary()
        assert got.body.startswith(poison)
        assert got.body.endswith(b"EXTRA")
    elif key == "te_over_cl":
        assert got.status == 200, got.summary()
        assert got.framing == "chunked"
        assert got.body.startswith(poison)
    else:
        raise AssertionError(f"no check written for declared difference {key!r}")


MALFORMED = [
    (14, "garbage status line (first attempt)", "garbage", "first", "http09"),
    (15, "garbage status line (every attempt)", "garbage", "all", "http09"),
    (16, "status 600 (first attempt)", "600", "first", "status_out_of_range"),
    (17, "status 999 (first attempt)", "999", "first", "status_out_of_range"),
    (18, "NUL in a header value (first attempt)", "nul", "first", "invalid_head"),
    (19, "control chars in a header value (first)", "ctl", "first", "ctl_relayed"),
    (20, "bare CR in a header value (first attempt)", "bare_cr", "first", "invalid_head"),
    (21, "two different Content-Lengths (first)", "dup_cl", "first", "last_content_length"),
    (22, "Content-Length + chunked (first attempt)", "cl_te", "first", "te_over_cl"),
]


@pytest.mark.parametrize(
    ("kind", "on", "difference"),
    [
        pytest.param(kind, on, key, marks=pytest.mark.hostile_case(n, title), id=f"{kind}-{on}")
        for n, title, kind, on, key in MALFORMED
    ],
)
def test_malformed_head_is_retried_or_refused(
    gw: Gateway, upstream: ScriptedUpstream, note: Note, kind: str, on: str, difference: str
) -> None:
    request_id = new_id(f"bad-{kind}")
    got = run(fetch(gw.port, f"/data?case=bad_head&kind={kind}&on={on}", request_id))
    attempts = upstream.attempts(request_id)
    note.got = f"{describe(got, request_id)} ({attempts} attempt{'s' if attempts > 1 else ''})"
    _common_invariants(got, request_id)
    reason = gw.declared(difference)
    if reason is not None:
        note.declared = reason
        _declared_behaviour(difference, got, kind)
    elif on == "first":
        assert is_own(got, request_id), f"expected the retried good answer, got {got.summary()}"
    else:
        assert got.status == 503, got.summary()
        assert not carries_poison(got)
    assert not run(clean_after(gw.port)), "plain requests after the case went wrong"


@pytest.mark.hostile_case(23, "extra response in the answer's packet")
def test_extra_response_in_the_same_packet_reaches_no_one(gw: Gateway, note: Note) -> None:
    """Each answer comes with a second response nobody asked for, in the same write, on a
    connection the upstream keeps open. The gateway has both in hand before it could reuse
    the connection: the extra must reach no one (8 concurrent users)."""
    result = run(load(gw.port, "/data?case=extra_response&gap_ms=0", tag="extra"))
    note.got = result.summary()
    assert not result.crosstalk(), f"answers carried another request's data: {result.crosstalk()}"
    wrong = [describe(got, rid) for rid, got in result.results if not is_own(got, rid)]
    assert not wrong, f"{len(wrong)} of {result.sent} did not get their own 200: {wrong[:5]}"
    assert not run(clean_after(gw.port))


@pytest.mark.hostile_case(24, "extra response while the connection idles")
def test_extra_response_on_an_idle_connection_reaches_no_one(gw: Gateway, note: Note) -> None:
    """The extra response comes 30 ms after the answer, while the connection sits idle in the
    gateway's pool; the next request comes 250 ms after the answer, and must not get it.

    (An extra response that arrives after the gateway has sent the next request on that
    connection cannot be told from the answer by any HTTP/1.1 client: the suite does not ask
    for that. Under load both gateways hand it to the next request.)"""

    async def one_by_one() -> list[tuple[str, Got]]:
        answers = []
        for _ in range(10):
            request_id = new_id("idle-extra")
            got = await fetch(gw.port, "/data?case=extra_response&gap_ms=30", request_id)
            answers.append((request_id, got))
            await asyncio.sleep(0.25)
        return answers

    answers = run(one_by_one())
    described = [describe(got, rid) for rid, got in answers]
    note.got = ", ".join(f"{described.count(d)} {d}" for d in sorted(set(described)))
    assert described == ["own 200"] * len(answers), described
    assert not run(clean_after(gw.port))


@pytest.mark.hostile_case(25, "head stalls beyond READ_TIMEOUT")
def test_slow_head_times_out(gw: Gateway, note: Note) -> None:
    read_timeout = SETTINGS.gateway["READ_TIMEOUT"]
    delay_ms = int((read_timeout + 1.5) * 1000)
    target = f"/data?case=slow_head&delay_ms={delay_ms}"
    got = run(fetch(gw.port, target, new_id("slow"), timeout_s=15))
    note.got = f"{got.summary()} after {got.elapsed_s:.1f} s"
    assert got.status == 503
    # Each of the two listeners is given READ_TIMEOUT, and no more.
    assert read_timeout <= got.elapsed_s < 2 * read_timeout + 1.5
