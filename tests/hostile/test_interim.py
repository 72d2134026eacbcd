"""1xx before the answer: interim responses must never be taken for the final one.

The bug: a gateway that takes a 1xx for the final response hands its pooled connection back
while the real 200 is still coming, and that 200 becomes the answer to the next request sent
on the connection: another user's data. Each case runs 8 concurrent users sending requests one
after another, and checks that no answer names another request.
"""

from collections.abc import Callable

import pytest

from tests.hostile.cases import Load, Note, clean_after, describe, is_own, load, rows, run
from tests.hostile.gateways import SETTINGS, Gateway

pytestmark = pytest.mark.hostile

# Longer than READ_TIMEOUT: a gateway that holds the 1xx back until then is seen doing so.
TIMEOUT_S = SETTINGS.gateway["READ_TIMEOUT"] + 1.5


def _load(port: int, target: str, tag: str) -> Load:
    return run(load(port, target, tag=tag, timeout_s=TIMEOUT_S))


def _check(gw: Gateway, note: Note, result: Load, first_interim: int) -> None:
    note.got = result.summary()
    assert result.sent >= 8
    assert not result.crosstalk(), f"answers carried another request's data: {result.crosstalk()}"
    reason = gw.declared("interim")
    if reason is None:
        wrong = [describe(got, rid) for rid, got in result.results if not is_own(got, rid)]
        assert not wrong, f"{len(wrong)} of {result.sent} did not get their own 200: {wrong[:5]}"
    else:
        note.declared = reason
        # What nginx 1.22 does instead: the 1xx reaches the client as if final, then nothing.
        for _, got in result.results:
            assert got.interim[:1] == [first_interim], got.summary()
            assert got.status is None, got.summary()
    assert not run(clean_after(gw.port)), "plain requests after the case went wrong"


@pytest.mark.parametrize(
    "codes",
    rows(
        (1, "103 Early Hints, then 200", "103", "103"),
        (2, "unsolicited 100 Continue, then 200", "100", "100"),
        (3, "four 1xx in a row, then 200", "several", "100,102,103,103"),
    ),
)
def test_interim_responses_are_not_the_answer(gw: Gateway, note: Note, codes: str) -> None:
    result = _load(gw.port, f"/data?case=interim&codes={codes}", "interim")
    _check(gw, note, result, int(codes.split(",")[0]))


@pytest.mark.hostile_case(4, "unsolicited 101, then 200 (first attempt)")
def test_unsolicited_switching_protocols_is_not_relayed(gw: Gateway, note: Note) -> None:
    result = _load(gw.port, "/data?case=switch101", "switch101")
    note.got = result.summary()
    assert not result.crosstalk(), f"answers carried another request's data: {result.crosstalk()}"
    reason = gw.declared("unsolicited_101")
    if reason is None:
        # A 101 the gateway never asked for is a broken answer: retried, like any other.
        wrong = [describe(got, rid) for rid, got in result.results if not is_own(got, rid)]
        assert not wrong, f"{len(wrong)} of {result.sent} did not get their own 200: {wrong[:5]}"
    else:
        note.declared = reason
        assert all(got.status == 101 for _, got in result.results), result.summary()
    assert not run(clean_after(gw.port)), "plain requests after the case went wrong"


@pytest.mark.hostile_case(5, "Node res.writeEarlyHints() (real 103)")
def test_node_early_hints(
    gateway_to: Callable[[list[int]], Gateway], node_port: int, note: Note
) -> None:
    gw = gateway_to([node_port])
    result = _load(gw.port, "/data?case=early_hints", "node103")
    _check(gw, note, result, 103)
