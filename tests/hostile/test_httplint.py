"""Every response a gateway writes itself, checked by httplint (mnot's HTTP linter, PyPI
`httplint`): no errors, and no warnings but those declared (`[hostile_deviations]`).

These are the answers no storage service wrote: its refusals (400, 404, 405, 431, 501), its
503 when no upstream answers well, and its own /health and /status. A response a gateway
relays is the upstream's to get right; the gateway's own are the gateway's.
"""

import pytest
from httplint import HttpResponseLinter
from httplint import status as status_notes
from httplint.note import levels

from tests.hostile.cases import Note, new_id, rows, run
from tests.hostile.client import Got, exchange, request_bytes
from tests.hostile.gateways import Gateway

pytestmark = pytest.mark.hostile

BIG_HEADERS = [(b"X-Big-%d" % i, b"v" * 4000) for i in range(12)]
"""48 KB of fields: over ours' 32 KiB and over nginx's large_client_header_buffers."""


def _request(kind: str) -> tuple[bytes, str]:
    """The raw request that makes the gateway answer `kind` itself, and its method."""
    request_id = new_id("lint")
    if kind == "not-found":
        return request_bytes("/nowhere", request_id), "GET"
    if kind == "method":
        return request_bytes("/data", request_id, method="DELETE"), "DELETE"
    if kind == "bad-request":
        return request_bytes("/data", request_id, host=None), "GET"
    if kind == "too-large":
        return request_bytes("/data", request_id, extra=BIG_HEADERS), "GET"
    if kind == "no-upstream":
        return request_bytes("/data?case=hang_up", request_id), "GET"
    if kind == "health":
        return request_bytes("/health", request_id), "GET"
    if kind == "status":
        return request_bytes("/status", request_id), "GET"
    raise ValueError(kind)


def _start_line(got: Got) -> tuple[bytes, bytes, bytes]:
    line = got.raw_start.split(b"\r\n", 1)[0]
    version, code, *phrase = line.split(b" ", 2)
    return version, code, phrase[0] if phrase else b""


def lint(got: Got) -> list[str]:
    """httplint's warnings and errors about one response, as `LEVEL: summary` lines."""
    linter = HttpResponseLinter()
    linter.process_response_topline(*_start_line(got))
    linter.process_headers(got.headers)
    linter.feed_content(got.body)
    linter.finish_content(got.complete)
    return [
        f"{note.level.name}: {note.summary}"
        for note in linter.notes
        if note.level in (levels.WARN, levels.BAD)
        # httplint describes some statuses themselves as warnings ("The server didn't
        # understand the request." for any 400): that is the status chosen, not a fault.
        and type(note).__module__ != status_notes.__name__
    ]


@pytest.mark.parametrize(
    "kind",
    rows(
        (90, "httplint: 404 for an unknown path", "404", "not-found"),
        (91, "httplint: 405 for a method /data does not take", "405", "method"),
        (92, "httplint: 400 for a request without Host", "400", "bad-request"),
        (93, "httplint: 431 for 48 KB of request fields", "431", "too-large"),
        (94, "httplint: 5xx when no upstream answers well", "5xx", "no-upstream"),
        (95, "httplint: /health", "health", "health"),
        (96, "httplint: /status", "status", "status"),
    ),
)
def test_own_responses_lint_clean(gw: Gateway, note: Note, kind: str) -> None:
    request, method = _request(kind)
    got = run(exchange(gw.port, request, method=method, timeout_s=15))[0]
    assert got.status is not None, f"no response: {got.summary()}"
    findings = lint(got)
    note.got = f"{got.status}: " + ("; ".join(findings) or "clean")
    assert got.complete, got.summary()
    assert not findings, f"httplint on {got.status}: {findings}"
