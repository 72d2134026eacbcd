"""Large bodies, byte for byte, and bodies cut short before and after the gateway commits.

Bodies are the upstream's deterministic pattern (1 MiB blocks, each numbered), hashed by the
client as it reads: nothing holds 100 MB. Memory is measured by the benchmark, not here.
"""

import asyncio

import pytest

from tests.hostile.cases import Note, clean_after, intact, new_id, rows, run
from tests.hostile.client import Got, fetch
from tests.hostile.gateways import RESPONSE_BUFFER_BYTES, Gateway

pytestmark = pytest.mark.hostile

MB = 1024 * 1024
BIG = 100 * MB


def _state(got: Got, size: int) -> str:
    return f"{got.status} byte-identical" if intact(got, size) else got.summary()


@pytest.mark.parametrize(
    "framing",
    rows(
        (26, "100 MB body (Content-Length)", "length", "length"),
        (27, "100 MB body (chunked)", "chunked", "chunked"),
    ),
)
def test_large_body_is_byte_identical(gw: Gateway, note: Note, framing: str) -> None:
    target = f"/data?case=big&size={BIG}&framing={framing}"
    got = run(fetch(gw.port, target, new_id("big"), timeout_s=60))
    note.got = f"{_state(got, BIG)} in {got.elapsed_s:.1f} s"
    assert intact(got, BIG), got.summary()


@pytest.mark.hostile_case(28, "five concurrent 100 MB bodies")
def test_concurrent_large_bodies_are_byte_identical(gw: Gateway, note: Note) -> None:
    async def five() -> list[Got]:
        target = f"/data?case=big&size={BIG}"
        return list(
            await asyncio.gather(
                *(fetch(gw.port, target, new_id("big5"), timeout_s=60) for _ in range(5))
            )
        )

    answers = run(five())
    whole = sum(intact(got, BIG) for got in answers)
    slowest = max(got.elapsed_s for got in answers)
    others = [got.summary() for got in answers if not intact(got, BIG)]
    note.got = f"{whole}/5 byte-identical in {slowest:.1f} s" + (f"; {others}" if others else "")
    assert whole == 5, others


CUT_AFTER = 2 * MB  # well past RESPONSE_BUFFER_BYTES: the gateway has committed to the answer
CUT_BEFORE = 16 * 1024  # well before it: the gateway can still try the other listener
assert CUT_BEFORE < RESPONSE_BUFFER_BYTES < CUT_AFTER


@pytest.mark.parametrize(
    "framing",
    rows(
        (29, "body cut after streaming began (CL)", "length", "length"),
        (30, "body cut after streaming began (chunked)", "chunked", "chunked"),
    ),
)
def test_body_cut_after_commit_is_never_complete(gw: Gateway, note: Note, framing: str) -> None:
    """Every attempt: 8 MB promised, 2 MB sent, a pause, then the connection closes. Once the
    head has gone to the client the only honest answer is a body that ends short of its
    framing (or a 5xx, for a gateway that had not committed yet): never a short body whose
    framing says it is complete."""
    size = 8 * MB
    target = f"/data?case=big&size={size}&framing={framing}&cut={CUT_AFTER}&pause_ms=300&on=all"
    got = run(fetch(gw.port, target, new_id("cut"), timeout_s=20))
    note.got = got.summary()
    assert not (got.ok_complete and got.body_len < size), "a short body presented as complete"
    assert got.status is None or got.status == 503 or (got.status == 200 and not got.complete)
    assert not run(clean_after(gw.port))


@pytest.mark.parametrize(
    "framing",
    rows(
        (31, "body cut before RESPONSE_BUFFER_BYTES (CL)", "length", "length"),
        (32, "body cut before RESPONSE_BUFFER_BYTES (chunked)", "chunked", "chunked"),
    ),
)
def test_body_cut_before_commit_is_retried(gw: Gateway, note: Note, framing: str) -> None:
    """First attempt: 1 MB promised, 16 KB sent, then the connection closes: the gateway
    still holds everything it got, so it can try the other listener, which answers in full."""
    size = MB
    target = f"/data?case=big&size={size}&framing={framing}&cut={CUT_BEFORE}&on=first"
    got = run(fetch(gw.port, target, new_id("early"), timeout_s=20))
    note.got = _state(got, size)
    assert not (got.ok_complete and got.body_len < size), "a short body presented as complete"
    reason = gw.declared("retry_after_head")
    if reason is None:
        assert intact(got, size), f"expected the retried full body, got {got.summary()}"
    else:
        note.declared = reason
        assert got.status == 200
        assert not got.complete
        assert got.body_len == CUT_BEFORE
    assert not run(clean_after(gw.port))
