"""What a reverse proxy is trusted with on the request side: the storage services' admin
interface stays out of reach, and forwarding headers a client makes up never land where the
gateway vouches for them. (The hop-by-hop fields are cases 57 and 58.)"""

from urllib.parse import urlsplit

import pytest

from tests.hostile.cases import Note, is_own, new_id, rows, run
from tests.hostile.client import exchange, request_bytes
from tests.hostile.gateways import Gateway
from tests.hostile.upstream import ScriptedUpstream

pytestmark = pytest.mark.hostile

ESCAPES = [
    # (method, target): each one a way a client might reach a path other than /data upstream.
    ("GET", "/admin/fault"),
    ("PUT", "/admin/fault"),
    ("GET", "/data/../admin/fault"),
    ("GET", "/data/%2e%2e/admin/fault"),
    ("GET", "/data%2f..%2fadmin%2ffault"),
    ("GET", "/data/..%2fadmin/fault"),
    ("GET", "/%2e%2e/admin/fault"),
    ("GET", "//admin/fault"),
    ("GET", "/data;/../admin/fault"),
    ("GET", "/data\\..\\admin\\fault"),
    ("GET", "/./admin/fault"),
    ("GET", "/DATA/../admin/fault"),
    ("GET", "http://storage1/admin/fault"),
    ("GET", "http://gateway/data/../admin/fault"),
    ("GET", "http://127.0.0.1:1/admin/fault"),
    ("OPTIONS", "*"),
    ("CONNECT", "storage1:80"),
    ("TRACE", "/data"),
]


@pytest.mark.hostile_case(87, "no target reaches a path but /data upstream")
def test_no_target_reaches_another_upstream_path(
    gw: Gateway, upstream: ScriptedUpstream, note: Note
) -> None:
    """Each target, on its own connection: whatever the gateway answers, the only path it may
    ask a storage service for is /data (the storage services' /admin/fault changes how they
    answer everyone: a client that reaches it takes the service down)."""
    reached: list[str] = []
    answered: list[str] = []
    for method, target in ESCAPES:
        request_id = new_id("escape")
        request = request_bytes(target, request_id, method=method)
        got = run(exchange(gw.port, request, method=method, timeout_s=5))[0]
        answered.append(f"{method} {target}: {got.status}")
        for seen in upstream.requests(request_id):
            path = urlsplit(seen.target).path if not seen.target.startswith("/") else seen.target
            if path.split("?")[0] != "/data":
                reached.append(f"{method} {target} -> {seen.method} {seen.target}")
    statuses = sorted({line.rsplit(": ", 1)[1] for line in answered})
    note.got = f"{len(ESCAPES)} targets: statuses {', '.join(statuses)}; reached {len(reached)}"
    assert not reached, f"paths other than /data reached the upstream: {reached}"


SPOOFED = b"203.0.113.9"


@pytest.mark.parametrize(
    ("name", "value"),
    rows(
        (88, "client-sent X-Forwarded-For", "xff", b"x-forwarded-for", SPOOFED),
        (89, "client-sent Forwarded", "forwarded", b"forwarded", b"for=" + SPOOFED),
    ),
)
def test_forwarding_headers_are_not_spoofable(
    gw: Gateway, upstream: ScriptedUpstream, note: Note, name: bytes, value: bytes
) -> None:
    """A client can write anything in X-Forwarded-For or Forwarded. A gateway may pass it on
    untouched and add nothing (then the storage service has nothing from it to trust: ours,
    nginx with the project's config), append the peer's address last (RFC 7239 section 4), or
    replace it with the peer's address; it must never present the client's value as the one it
    vouches for, the last element, nor leave two fields for a service to pick from."""
    request_id = new_id("spoof")
    request = request_bytes("/data?case=echo", request_id, extra=[(name, value)])
    got = run(exchange(gw.port, request))[0]
    seen = upstream.requests(request_id)
    values = [v for s in seen for n, v in s.headers if n == name]
    if values == [value]:
        how = "passed on untouched, nothing added"
    elif len(values) == 1 and values[0].startswith(value + b",") and values[0] != value:
        how = f"appended: {values[0].decode()}"
    elif len(values) == 1 and SPOOFED not in values[0]:
        how = f"replaced: {values[0].decode()}"
    else:
        how = f"spoofable: {values}"
    note.got = how
    assert is_own(got, request_id), got.summary()
    assert len(values) == 1, f"{len(values)} {name.decode()} fields reached the upstream"
    assert not how.startswith("spoofable"), how
    if how.startswith("appended"):
        last = values[0].rsplit(b",", 1)[1].strip()
        assert SPOOFED not in last, "the client's address took the gateway's place"
        assert b"127.0.0.1" in last, f"the appended element is not the peer's: {last!r}"
