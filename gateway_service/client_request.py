"""Requests the gateway refuses before routing them: wrong HTTP version, missing or repeated Host.

llhttp (httptools), which parses client requests (gateway_service/http_server.py), passes these
on: an `HTTP/2.0` or `HTTP/0.9` request line arrives as `http_version` "2.0" / "0.9", and Host
headers are not checked at all (it refuses 1.2 or 3.0 itself with 400). nginx answers all of
them itself (505, 400) and closes the connection; so do we, whatever ASGI server runs the app.
"""

from collections.abc import MutableMapping
from typing import Any

Answer = tuple[int, str]

HOST = b"host"
# Sent with every refusal: after a malformed request the connection's framing is not to be
# trusted (two Host headers are a request-smuggling probe), and nginx closes it too.
CLOSE = (b"connection", b"close")

MISSING_HOST: Answer = (400, "an HTTP/1.1 request needs a Host header")
REPEATED_HOST: Answer = (400, "a request may carry only one Host header")


def host_and_version_problem(host_count: int, http_version: str) -> Answer | None:
    """Check a request's HTTP version and Host headers; None when it may be served.

    `host_count` is how many header fields named `host` the request has (names as ASGI gives
    them, lower-case); `http_version` is the scope's "http_version". Only ints and string
    comparisons on the accepted path, so the proxy can call it per request after its own pass
    over the headers.

    Returns (status, detail) for the answer, to be sent as JSON `{"detail": detail}` with
    `Connection: close` (CLOSE):
    - 505 for any version but "1.0" and "1.1" (RFC 9110 15.6.6): the gateway speaks HTTP/1.x
      only; checked first, as nginx does, because the request line comes before the headers.
    - 400 when there is more than one Host header, whatever the version (RFC 9112 3.2).
    - 400 for an HTTP/1.1 request without Host (RFC 9112 3.2); HTTP/1.0 may omit it.
    The Host value itself is not examined.
    """
    if http_version == "1.1":
        if host_count == 1:
            return None
        return MISSING_HOST if host_count == 0 else REPEATED_HOST
    if http_version != "1.0":
        return (505, f"HTTP version {http_version} is not supported; use HTTP/1.1")
    return REPEATED_HOST if host_count > 1 else None


def request_problem(scope: MutableMapping[str, Any]) -> Answer | None:
    """The answer for an HTTP scope that must not be served (see host_and_version_problem)."""
    host_count = 0
    for name, _ in scope["headers"]:
        if name == HOST:
            host_count += 1
    return host_and_version_problem(host_count, scope["http_version"])
