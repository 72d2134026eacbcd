"""The scripted hostile upstream: raw asyncio sockets, one script per case.

It runs in a background thread of the pytest process, on two loopback ports at once: each
gateway lists both in STORAGE_SERVICES, so a request whose first attempt the script spoils is
retried on the other listener and gets the good answer there.

A request picks its script with the query string (`/data?case=NAME&...`; both gateways forward
the query) and is known by its `X-Request-ID` (both gateways forward it, the same on every
attempt). That gives the scripts two things:

- the good body embeds the request id (`good_body`), so a response that reached the wrong
  client is recognised as someone else's;
- the upstream counts attempts per id, so a script can spoil the first attempt only.

Connections are kept alive unless a script says otherwise, as a storage service would: the
cross-talk bugs need a pooled connection to be reused.
"""

import asyncio
import contextlib
import functools
import hashlib
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

IDLE_S = 30.0  # an idle keep-alive connection is closed after this
BLOCK = 1024 * 1024
_PAD = b"x" * 160
POISON = b"POISON"


def good_body(request_id: str) -> bytes:
    """The one body a request may receive: it names the request."""
    return (
        b'{"id": "'
        + request_id.encode()
        + b'", "from": "hostile-upstream", "pad": "'
        + _PAD
        + b'"}'
    )


def response(
    body: bytes,
    *,
    status: bytes = b"200 OK",
    headers: tuple[bytes, ...] = (b"Content-Type: application/json",),
) -> bytes:
    head = [b"HTTP/1.1 " + status, *headers, b"Content-Length: %d" % len(body)]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


@functools.cache
def _base_block() -> bytes:
    seed = hashlib.sha256(b"hostile-upstream").digest()
    return (seed * (BLOCK // len(seed) + 1))[:BLOCK]


def pattern(size: int) -> Iterator[bytes]:
    """`size` deterministic bytes in 1 MiB blocks; each block starts with its own number, so a
    reordered, repeated or dropped block changes the hash."""
    base = _base_block()
    index = 0
    sent = 0
    while sent < size:
        block = b"%016d" % index + base[16:]
        block = block[: size - sent]
        yield block
        sent += len(block)
        index += 1


@functools.cache
def pattern_digest(size: int) -> str:
    digest = hashlib.sha256()
    for block in pattern(size):
        digest.update(block)
    return digest.hexdigest()


INTERIM = {
    100: b"HTTP/1.1 100 Continue\r\n\r\n",
    102: b"HTTP/1.1 102 Processing\r\n\r\n",
    103: b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n",
    101: b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
}


@dataclass
class Seen:
    """One request as the upstream received it."""

    listener: int
    method: str
    target: str
    request_id: str
    attempt: int
    headers: list[tuple[bytes, bytes]]
    # time.monotonic() when the gateway closed this connection before the script had answered
    # in full (the scripts that watch for it: `slow`, `drip`); None while it has not.
    gateway_closed_at: float | None = None
    answered: bool = False
    body: bytes = b""
    """The request body as framed by the gateway (Content-Length or chunked)."""
    body_short: bool = False
    """The body ended (or stopped coming) before its framing said it would."""
    connection: int = 0
    """Which of the upstream's accepted connections it came on (numbered from 1)."""


class Exchange:
    """What a script gets: the request, its attempt number, and the connection to answer on."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        seen: Seen,
        params: dict[str, str],
        counted: Counter[str],
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.seen = seen
        self.params = params
        self.counted = counted
        """Counts a script keeps across requests, by its own keys (the upstream's loop is
        the only one that touches them)."""

    @property
    def request_id(self) -> str:
        return self.seen.request_id

    @property
    def first(self) -> bool:
        return self.seen.attempt == 1

    def spoil(self) -> bool:
        """Whether this attempt gets the bad answer: `on=all`, or the first attempt only."""
        return self.params.get("on", "first") == "all" or self.first

    def number(self, name: str, default: int) -> int:
        return int(self.params.get(name, default))

    def good(self) -> bytes:
        return response(good_body(self.request_id))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def pause(self, name: str = "gap_ms", default_ms: int = 50) -> None:
        await asyncio.sleep(self.number(name, default_ms) / 1000)

    def gateway_closed(self) -> None:
        self.seen.gateway_closed_at = time.monotonic()


Script = Callable[[Exchange], Awaitable[bool]]  # True: keep the connection for the next request
SCRIPTS: dict[str, Script] = {}


def script(name: str) -> Callable[[Script], Script]:
    def register(function: Script) -> Script:
        SCRIPTS[name] = function
        return function

    return register


@script("echo")
async def _echo(x: Exchange) -> bool:
    await x.send(x.good())
    return True


@script("interim")
async def _interim(x: Exchange) -> bool:
    """`codes=103,100`: each interim response in its own packet, `gap_ms` apart, then the 200."""
    for code in x.params.get("codes", "103").split(","):
        await x.send(INTERIM[int(code)])
        await x.pause()
    await x.send(x.good())
    return True


@script("switch101")
async def _switch101(x: Exchange) -> bool:
    """On the spoiled attempts a 101 nobody asked for, then (`gap_ms` later) the 200 as if the
    101 were interim; the connection stays open."""
    if x.spoil():
        await x.send(INTERIM[101])
        await x.pause()
    await x.send(x.good())
    return True


@script("close_delimited")
async def _close_delimited(x: Exchange) -> bool:
    """No Content-Length, no chunking: the body ends when the connection does."""
    version = x.params.get("version", "1.0")
    head = [f"HTTP/{version} 200 OK".encode(), b"Content-Type: application/json"]
    if version == "1.1":
        head.append(b"Connection: close")
    await x.send(b"\r\n".join(head) + b"\r\n\r\n")
    await x.pause(default_ms=20)
    await x.send(good_body(x.request_id))
    return False


@script("trailers")
async def _trailers(x: Exchange) -> bool:
    body = good_body(x.request_id)
    await x.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        b"Trailer: Set-Cookie, Content-Type\r\n\r\n"
        + chunk(body[:40])
        + chunk(body[40:])
        + b"0\r\nSet-Cookie: hijacked=1; Path=/\r\nContent-Type: text/html\r\n\r\n"
    )
    return True


@script("huge_header")
async def _huge_header(x: Exchange) -> bool:
    """One header value of `mb` MiB, written a MiB at a time."""
    body = good_body(x.request_id)
    await x.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nX-Huge: " % len(body)
    )
    filler = b"a" * BLOCK
    for _ in range(x.number("mb", 50)):
        await x.send(filler)
    await x.send(b"\r\n\r\n" + body)
    return False


@script("many_headers")
async def _many_headers(x: Exchange) -> bool:
    count = x.number("count", 1000)
    headers = tuple(b"X-Header-%d: value-%d" % (i, i) for i in range(count))
    await x.send(response(good_body(x.request_id), headers=headers))
    return True


@script("long_status")
async def _long_status(x: Exchange) -> bool:
    reason = b"O" * (x.number("kb", 100) * 1024)
    await x.send(response(good_body(x.request_id), status=b"200 " + reason))
    return True


@script("big")
async def _big(x: Exchange) -> bool:
    """`size` bytes, `framing=length|chunked`; with `cut=N` the connection is closed after N
    body bytes (and a pause of `pause_ms`) on the attempts `on` selects."""
    size = x.number("size", BLOCK)
    chunked = x.params.get("framing", "length") == "chunked"
    cut = x.number("cut", -1) if "cut" in x.params and x.spoil() else -1
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % size
    await x.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n" + framing + b"\r\n\r\n"
    )
    sent = 0
    for block in pattern(size):
        if 0 <= cut < sent + len(block):
            part = block[: cut - sent]
            await x.send(chunk(part) if chunked and part else part)
            await x.pause("pause_ms", 0)
            return False
        await x.send(chunk(block) if chunked else block)
        sent += len(block)
    if chunked:
        await x.send(b"0\r\n\r\n")
    return True


@script("no_body_status")
async def _no_body_status(x: Exchange) -> bool:
    """204 or 304: no body, no Content-Length (RFC 9110 8.6 forbids one on a 204)."""
    if x.number("code", 204) == 204:
        await x.send(b"HTTP/1.1 204 No Content\r\nX-Marker: kept\r\n\r\n")
    else:
        await x.send(b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nX-Marker: kept\r\n\r\n')
    return True


def _bad_head(kind: str, request_id: str) -> bytes:
    poison = POISON + b"-" + request_id.encode()
    if kind == "garbage":
        return b"HELLO FROM A BROKEN SERVER\r\n\r\n" + poison
    if kind in ("600", "999"):
        return response(poison, status=kind.encode() + b" Weird")
    if kind == "nul":
        return response(poison, headers=(b"X-Bad: a\x00b",))
    if kind == "ctl":
        return response(poison, headers=(b"X-Bad: a\x01b\x1bc\x7fd",))
    if kind == "bare_cr":
        return response(poison, headers=(b"X-Bad: a\rSet-Cookie: injected=1",))
    if kind == "dup_cl":
        return (
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Length: %d\r\n\r\n"
                % (len(poison), len(poison) + 5)
            )
            + poison
            + b"EXTRA"
        )
    if kind == "cl_te":
        return (
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n"
                % (len(poison) + 2)
            )
            + chunk(poison)
            + b"0\r\n\r\n"
        )
    raise ValueError(f"unknown bad head {kind!r}")


@script("bad_head")
async def _bad(x: Exchange) -> bool:
    """A malformed response (`kind=`) on the attempts `on` selects; the good one otherwise."""
    if not x.spoil():
        await x.send(x.good())
        return True
    kind = x.params["kind"]
    await x.send(_bad_head(kind, x.request_id))
    # Garbage ends with the connection; anything else leaves it open, as a broken server
    # would: a gateway must not reuse it.
    return kind != "garbage"


@script("extra_response")
async def _extra_response(x: Exchange) -> bool:
    """The answer and a second response nobody asked for, on a connection that stays open for
    the next request: in the same write (`gap_ms=0`), or `gap_ms` later."""
    extra = response(good_body("UNSOLICITED-" + x.request_id))
    gap_ms = x.number("gap_ms", 0)
    if gap_ms == 0:
        await x.send(x.good() + extra)
    else:
        await x.send(x.good())
        await asyncio.sleep(gap_ms / 1000)
        await x.send(extra)
    return True


@script("slow_head")
async def _slow_head(x: Exchange) -> bool:
    """The status line, then nothing for `delay_ms`, then the rest."""
    await x.send(b"HTTP/1.1 200 OK\r\n")
    await x.pause("delay_ms", 3000)
    body = good_body(x.request_id)
    await x.send(b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    return False


@script("slow")
async def _slow(x: Exchange) -> bool:
    """The good answer `delay_ms` late, unless the gateway closes the connection first (it
    gave the request up: its client left); that is recorded, and nothing is sent."""
    try:
        data = await asyncio.wait_for(x.reader.read(1), x.number("delay_ms", 2000) / 1000)
    except TimeoutError:
        await x.send(x.good())
        x.seen.answered = True
        return True
    except ConnectionError:
        data = b""
    if not data:
        x.gateway_closed()
    # Bytes while a request is pending: no gateway may send them; the connection is not reused.
    return False


@script("drip")
async def _drip(x: Exchange) -> bool:
    """A `size`-byte body (Content-Length) sent in 64 KiB blocks `gap_ms` apart, so a long
    response is still being produced when its client leaves; stops, and records when, as soon
    as the gateway closes the connection."""
    size = x.number("size", 32 * BLOCK)
    gap_s = x.number("gap_ms", 10) / 1000
    closed = asyncio.ensure_future(x.reader.read(1))
    try:
        await x.send(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Length: %d\r\n\r\n" % size
        )
        for block in pattern(size):
            for start in range(0, len(block), 64 * 1024):
                if closed.done():
                    # EOF or a reset: the gateway let go. (Bytes would be no better: no
                    # gateway may send any while a response is pending.)
                    x.gateway_closed()
                    return False
                await x.send(block[start : start + 64 * 1024])
                await asyncio.sleep(gap_s)
    except (ConnectionError, OSError):
        x.gateway_closed()
        return False
    finally:
        if closed.done() and not closed.cancelled():
            closed.exception()  # a reset is an answer here, not an error to report
        closed.cancel()
    x.seen.answered = True
    return False


@script("hang_up")
async def _hang_up(x: Exchange) -> bool:
    """The connection closes before any answer, every attempt: the gateway has nothing to
    relay and answers for itself."""
    return False


NOT_THIS = b"NOT-THIS-EXTRA"
"""Bytes an upstream sends past the end of its response: they belong to no response."""


def nginx_tests_response(kind: str, body: bytes) -> tuple[bytes, bytes | None]:
    """The framings nginx-tests' proxy_extra_data.t, proxy_chunked_extra.t and
    proxy_keepalive.t put in front of nginx (ported by behaviour): the response, and, for the
    complex chunked one, its last CRLF, which comes a little later."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    chunked = head + b"Transfer-Encoding: chunked\r\n\r\n"
    if kind == "length":
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body, None
    if kind == "length_extra":
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body + NOT_THIS, None
    if kind == "zero_extra":
        return head + b"Content-Length: 0\r\n\r\n" + NOT_THIS, None
    if kind == "chunked":
        return chunked + chunk(body) + b"0\r\n\r\n", None
    if kind == "chunked_extra":
        return chunked + chunk(body) + b"0\r\n\r\n" + NOT_THIS, None
    if kind == "complex":
        pieces = b"".join(chunk(body[i : i + 10]) for i in range(0, len(body), 10))
        return chunked + pieces + b"0\r\n", b"\r\n"
    if kind == "chunk0":
        return chunked + b"0\r\n\r\n", None
    if kind == "empty":
        return head + b"Content-Length: 0\r\n\r\n", None
    if kind == "304nolen":
        return b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n', None
    if kind == "304len":
        # A 304 has no body whatever its Content-Length says (RFC 9110 8.6).
        return b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 100\r\n\r\n', None
    raise ValueError(f"unknown nginx-tests response {kind!r}")


@script("nginx_tests")
async def _nginx_tests(x: Exchange) -> bool:
    """One of nginx-tests' upstream framings (`kind=`); the connection stays open after it."""
    response, later = nginx_tests_response(x.params["kind"], good_body(x.request_id))
    await x.send(response)
    if later is not None:
        await asyncio.sleep(0.05)
        await x.send(later)
    return True


SINGLE_FIELDS = (
    (b"Content-Type", b"application/json", b"text/html"),
    (b"Location", b"/first", b"/second"),
    (b"ETag", b'"first"', b'"second"'),
    (b"Last-Modified", b"Thu, 01 Jan 2026 00:00:00 GMT", b"Fri, 02 Jan 2026 00:00:00 GMT"),
    (b"Expires", b"Thu, 01 Jan 2026 00:00:00 GMT", b"Fri, 02 Jan 2026 00:00:00 GMT"),
)
"""Fields with one value (RFC 9110 5.3), each sent twice with two values: (name, first, second)."""
LIST_FIELDS = (
    (b"Cache-Control", b"no-store", b"private"),
    (b"Link", b"</a.css>; rel=preload", b"</b.js>; rel=preload"),
    (b"Set-Cookie", b"a=1; Path=/", b"b=2; Path=/"),
    (b"X-Multi", b"one", b"two"),
)
"""Fields whose lines add up (a list, or Set-Cookie), each sent twice: (name, first, second)."""


@script("repeated")
async def _repeated(x: Exchange) -> bool:
    """proxy_duplicate_headers.t: the good answer, with each of the `fields=single|list` sent
    on two lines with two values."""
    table = SINGLE_FIELDS if x.params.get("fields") == "single" else LIST_FIELDS
    lines = [name + b": " + first for name, first, _ in table]
    lines += [name + b": " + second for name, _, second in table]
    if x.params.get("fields") != "single":
        lines.append(b"Content-Type: application/json")
    await x.send(response(good_body(x.request_id), headers=tuple(lines)))
    return True


UPSTREAM_T_EVERY = 3
"""upstream.t: its first server closes every third connection of the `close` requests."""


@script("upstream_t")
async def _upstream_t(x: Exchange) -> bool:
    """upstream.t's daemon: the good answer with `Connection: close`, so each request has a
    connection of its own; with `failing=1`, the first listener closes every third connection
    of the requests tagged `run=` without answering."""
    key = f"{x.params.get('run', '')}/{x.seen.listener}"
    x.counted[key] += 1
    failing = x.params.get("failing") == "1" and x.seen.listener == 0
    if failing and x.counted[key] % UPSTREAM_T_EVERY == 0:
        return False
    body = good_body(x.request_id)
    x.seen.answered = True  # before the client can have it, so its count is never behind
    await x.send(response(body, headers=(b"Content-Type: application/json", b"Connection: close")))
    return False


BODY_WAIT_S = 1.0
"""How long the upstream waits for the rest of a request body a gateway framed."""
BODY_LIMIT = 1024 * 1024


async def _request_body(
    reader: asyncio.StreamReader, headers: list[tuple[bytes, bytes]]
) -> tuple[bytes, bool]:
    """The body the gateway's framing announces, and whether it came short (a gateway that
    announces a length it does not send has desynchronised the connection)."""
    chunked = any(n == b"transfer-encoding" and v.lower() == b"chunked" for n, v in headers)
    length = next((int(v) for n, v in headers if n == b"content-length" and v.isdigit()), 0)
    body = bytearray()
    try:
        async with asyncio.timeout(BODY_WAIT_S):
            if chunked:
                while len(body) < BODY_LIMIT:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    if size == 0:
                        while await reader.readuntil(b"\r\n") != b"\r\n":
                            pass
                        break
                    body += (await reader.readexactly(size + 2))[:-2]
            elif length:
                body += await reader.readexactly(min(length, BODY_LIMIT))
    except (TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
        if isinstance(error, asyncio.IncompleteReadError):
            body += error.partial
        return bytes(body), True
    return bytes(body), False


GARDEN_TAIL = b"HTTP/1.1 200 OK\r\nContent-Length: 19\r\n\r\n" + b"UNSOLICITED-garden!"
"""What follows each malformed response on its connection: a whole response nobody asked for,
which a gateway that framed the malformed one wrongly takes for the next request's answer."""


def garden_response(kind: str, body: bytes) -> bytes:
    """HTTP Garden's proxy classes, on the response side: `body` framed in a way a parser
    may misread (an `0x`, `+` or `-` in a length, an empty length, a list of codings, bare LF
    line ends, a header line without a colon)."""
    n = len(body)
    chunked = b"%x\r\n%s\r\n0\r\n\r\n"
    heads = {
        "cl_hex": (b"Content-Length: 0x%x" % n, body),
        "cl_plus": (b"Content-Length: +%d" % n, body),
        "cl_minus": (b"Content-Length: -%d" % n, body),
        "cl_empty": (b"Content-Length: ", body),
        "chunk_hex": (b"Transfer-Encoding: chunked", b"0x" + chunked % (n, body)),
        "chunk_plus": (b"Transfer-Encoding: chunked", b"+" + chunked % (n, body)),
        "chunk_minus": (b"Transfer-Encoding: chunked", b"-" + chunked % (n, body)),
        "te_comma": (b"Transfer-Encoding: ,chunked", chunked % (n, body)),
        "te_list": (b"Transfer-Encoding: identity, chunked", chunked % (n, body)),
        "no_colon": (b"NoColonHere\r\nContent-Length: %d" % n, body),
        # nginx-tests' proxy_duplicate_headers.t: framing fields repeated.
        "cl_twice": (b"Content-Length: %d\r\nContent-Length: %d" % (n, n), body),
        "te_twice": (
            b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
            chunked % (n, body),
        ),
    }
    if kind == "bare_lf":
        return b"HTTP/1.1 200 OK\nContent-Length: %d\nX-Marker: lf\n\n" % n + body
    line, payload = heads[kind]
    return b"HTTP/1.1 200 OK\r\n" + line + b"\r\n\r\n" + payload


@script("garden")
async def _garden(x: Exchange) -> bool:
    """A response in one of HTTP Garden's malformed framings (`kind=`) on the attempts `on`
    selects, followed by a response nobody asked for; the good one otherwise."""
    if not x.spoil():
        await x.send(x.good())
        return True
    await x.send(garden_response(x.params["kind"], POISON + b"-" + x.request_id.encode()))
    await x.send(GARDEN_TAIL)
    return True


class ScriptedUpstream:
    """Both listeners and the thread their event loop runs in."""

    def __init__(self, listeners: int = 2) -> None:
        self.listeners = listeners
        self.ports: list[int] = []
        self.seen: list[Seen] = []
        self._attempts: Counter[str] = Counter()
        self._counted: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._connections = 0

    def start(self) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self.ports = future.result(timeout=10)

    async def _listen(self) -> list[int]:
        ports = []
        for listener in range(self.listeners):
            server = await asyncio.start_server(
                functools.partial(self._serve, listener), "127.0.0.1", 0
            )
            self._servers.append(server)
            ports.append(server.sockets[0].getsockname()[1])
        return ports

    def stop(self) -> None:
        if not self._thread.is_alive():
            self._loop.close()
            return
        with contextlib.suppress(TimeoutError):
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    async def _shutdown(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()

    def attempts(self, request_id: str) -> int:
        with self._lock:
            return self._attempts[request_id]

    @property
    def accepted(self) -> int:
        """How many connections the upstream has accepted so far (both listeners)."""
        with self._lock:
            return self._connections

    def targets(self) -> list[str]:
        with self._lock:
            return [seen.target for seen in self.seen]

    def requests(self, request_id: str) -> list[Seen]:
        """Every attempt of this request, as the upstream received it."""
        with self._lock:
            return [seen for seen in self.seen if seen.request_id == request_id]

    async def _serve(
        self, listener: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            with self._lock:
                self._connections += 1
                connection = self._connections
            while await self._one(listener, reader, writer, connection):
                pass
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        except (ConnectionError, OSError):
            pass  # the gateway hung up on a hostile answer: that is its right
        except asyncio.CancelledError:
            pass  # the upstream is stopping; asyncio's server callback must not see it cancelled
        finally:
            self._tasks.discard(task)
            writer.transport.abort()

    async def _one(
        self,
        listener: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        connection: int,
    ) -> bool:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_S)
        lines = head[:-4].split(b"\r\n")
        method, target, _ = lines[0].decode("latin-1").split(" ", 2)
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers.append((name.strip().lower(), value.strip()))
        body, short = await _request_body(reader, headers)
        request_id = next((v.decode() for n, v in headers if n == b"x-request-id"), "")
        with self._lock:
            self._attempts[request_id] += 1
            seen = Seen(listener, method, target, request_id, self._attempts[request_id], headers)
            seen.body, seen.body_short, seen.connection = body, short, connection
            self.seen.append(seen)
        query = parse_qs(urlsplit(target).query)
        params = {name: values[-1] for name, values in query.items()}
        run = SCRIPTS.get(params.get("case", "echo"), _echo)
        return await run(Exchange(reader, writer, seen, params, self._counted))
