"""Random upstream responses for the differential test, and the scripted server that sends them.

A response is described by a small frozen dataclass (what hypothesis draws and prints) and turned
into bytes for one request id only when it is sent: every header value and every body the
upstream produces embeds the id of the request it answers, so a client that sees any other id
has been handed bytes meant for someone else.

- `Reply`: a well-formed final response (optionally preceded by 1xx interim responses), framed by
  Content-Length, chunked (extensions, trailers) or the end of the connection.
- `Broken`: a malformed response built from a `Reply` (`BROKEN_KINDS` lists how).
- `CutMidStream`: a well-formed head and a body larger than the gateway's response buffer, cut
  after more than the buffer was sent: the gateway has to have started streaming by then.

`expectations()` is the oracle: what a client may receive for a request whose first attempt is
answered with one spec and whose retry (on the other listener) with another.
"""

import asyncio
import os
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import MISSING, dataclass, field, replace
from dataclasses import fields as dataclass_fields
from functools import lru_cache

from hypothesis import strategies as st

from gateway_service.limits import MAX_HEADER_BYTES, MAX_HEADER_COUNT
from gateway_service.settings import GatewaySettings

_buffer_field = GatewaySettings.model_fields.get("response_buffer_bytes")
# How much of a response the gateway holds before it streams (RESPONSE_BUFFER_BYTES' default).
BUFFER = int(_buffer_field.default) if _buffer_field is not None else 64 * 1024
MAX_BODY = 300 * 1024
# A response head over MAX_HEADER_COUNT fields or MAX_HEADER_BYTES (the limits on a client's
# request head) is malformed too.

# After 0 s the unsolicited response is in the same write as the real one: a gateway must see it
# before it reuses the connection. Later, it may arrive after the connection was reused, where
# HTTP/1.1 cannot tell it from the answer to the next request (DIFFERENTIAL_RACY_EXTRA=1).
EXTRA_DELAYS = (0.0, 0.002, 0.01) if os.environ.get("DIFFERENTIAL_RACY_EXTRA") == "1" else (0.0,)
FINAL_STATUSES = (200, 201, 204, 206, 301, 304, 404, 418, 500, 503)
NO_BODY = (204, 304)
# Hop-by-hop (RFC 9110 7.6.1) and the fields the gateway sets itself: never compared.
HOP_BY_HOP = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-connection", b"proxy-authenticate",
        b"proxy-authorization", b"te", b"trailer", b"transfer-encoding", b"upgrade",
    }
)  # fmt: skip
NOT_COMPARED = HOP_BY_HOP | {b"date", b"server", b"content-length", b"x-request-id"}
# Field values that must never reach a client as a header carry these prefixes.
INTERIM_MARK = b"1xx:"
TRAILER_MARK = b"trailer:"
HOP_MARK = b"hop:"
NOMINATED = b"X-Hop-Only"  # listed in Connection: hop-by-hop by nomination


class _Compact:
    """A repr that leaves out fields at their defaults: falsifying examples stay readable."""

    def __repr__(self) -> str:
        parts = []
        for spec_field in dataclass_fields(self):  # type: ignore[arg-type]
            value = getattr(self, spec_field.name)
            if spec_field.default is not MISSING and value == spec_field.default:
                continue
            parts.append(f"{spec_field.name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


@dataclass(frozen=True, repr=False)
class Field(_Compact):
    """A header field whose value is `prefix + request id + suffix`."""

    name: bytes
    prefix: bytes = b""
    suffix: bytes = b""

    def value(self, rid: bytes) -> bytes:
        return self.prefix + rid + self.suffix


@dataclass(frozen=True, repr=False)
class Interim(_Compact):
    status: int  # 100, 102 or 103
    fields: tuple[Field, ...] = ()


@dataclass(frozen=True, repr=False)
class Writes(_Compact):
    """Where the server splits its writes (per mille of the bytes) and how long it pauses."""

    cuts: tuple[int, ...] = ()
    pauses: tuple[float, ...] = ()


@dataclass(frozen=True, repr=False)
class Reply(_Compact):
    """A well-formed final response."""

    status: int = 200
    version: bytes = b"1.1"
    reason: bytes = b"OK"
    fields: tuple[Field, ...] = ()
    framing: str = "length"  # length | chunked | eof | none (204/304)
    body_size: int = 0
    body_seed: int = 0
    chunks: tuple[int, ...] = ()  # chunk sizes; what is left goes in one last chunk
    chunk_ext: bool = False
    trailers: tuple[Field, ...] = ()
    announce_trailers: bool = False  # a Trailer: header naming them
    close: bool = False  # Connection: close (HTTP/1.1), or no keep-alive (HTTP/1.0)
    keep_alive_header: bool = False  # Keep-Alive: timeout=5 (hop-by-hop)
    nominated: bool = False  # Connection: x-hop-only, and an X-Hop-Only field
    interim: tuple[Interim, ...] = ()
    # An unsolicited response follows: in the same write (0.0), or this many seconds later.
    extra: float | None = None
    writes: Writes = Writes()


BROKEN_KINDS = (
    "garbage_status",  # arg: index into GARBAGE_STATUS_LINES
    "bad_status",  # arg: the status code, outside 100-599
    "ctl_in_value",  # arg: the control byte put into the first field's value
    "conflicting_length",  # arg: how much the second Content-Length differs
    "bad_length",  # arg: index into BAD_LENGTHS
    "length_and_chunked",  # arg: the Content-Length sent with a chunked body
    "truncated_body",  # arg: where the body is cut (per mille), below the buffer threshold
    "truncated_head",  # arg: where the head is cut (per mille)
    "bad_chunk_size",  # arg: index into BAD_CHUNK_SIZES
    "too_many_headers",  # arg: how many fields
    "huge_head",  # arg: bytes of field values
    "unsolicited_101",  # arg: unused
)
GARBAGE_STATUS_LINES = (
    b"HTTP/1.1 OK",
    b"HTPT/1.1 200 OK",
    b"HTTP/1.1 2OO OK",
    b"HTTP/9.9 200 OK",
    b"HTTP/2.0 200 OK",
    b"200 OK",
    b"HTTP/1.1  200 OK",
    b"HTTP/1.1 20 OK",
    b"HTTP/1.1 2000 OK",
    b"http/1.1 200 OK",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    b"<html><body>{id}</body></html>",
)
BAD_LENGTHS = (b"abc", b"-1", b"1.5", b"0x10", b"", b"1 2", b"+5", b"2, 2", b"9" * 30)
BAD_CHUNK_SIZES = (b"zz", b"-1", b"0x10", b"1 0", b"", b"+2", b"g", b"f" * 20)
CONTROL_BYTES = tuple(bytes([c]) for c in (*range(0, 9), *range(10, 32), 127))


@dataclass(frozen=True, repr=False)
class Broken(_Compact):
    """A malformed response: `base` spoiled the way `kind` says (see BROKEN_KINDS)."""

    kind: str
    arg: int
    base: Reply


@dataclass(frozen=True, repr=False)
class CutMidStream(_Compact):
    """`base` (body over the buffer) cut after `sent` body bytes, more than the buffer."""

    base: Reply
    sent: int


Spec = Reply | Broken | CutMidStream


@dataclass(frozen=True, repr=False)
class Script(_Compact):
    """What the upstream sends a request's first attempt, and its retry; when it is sent."""

    first: Spec
    retry: Spec
    delay: float = 0.0


@dataclass(frozen=True, repr=False)
class Batch(_Compact):
    requests: tuple[Script, ...]
    client_connections: int = 1


def succeeds(spec: Spec) -> bool:
    """The gateway hands this attempt's answer to the client (no retry)."""
    return isinstance(spec, Reply) and spec.status < 500


# Rendering


@lru_cache(maxsize=64)
def body_bytes(rid: bytes, size: int, seed: int) -> bytes:
    """`size` bytes: blocks of pseudo-random bytes, each starting with the request id."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        out += b"<" + rid + b">" + rng.randbytes(1021)
    return bytes(out[:size])


def body_of(reply: Reply, rid: bytes) -> bytes:
    return body_bytes(rid, reply.body_size, reply.body_seed)


def _line(name: bytes, value: bytes) -> bytes:
    return name + b": " + value + b"\r\n"


def _interim(interim: Interim, rid: bytes) -> bytes:
    reason = {100: b"Continue", 102: b"Processing", 103: b"Early Hints"}[interim.status]
    lines = [b"HTTP/1.1 %d %s\r\n" % (interim.status, reason)]
    lines += [_line(f.name, INTERIM_MARK + f.value(rid)) for f in interim.fields]
    return b"".join(lines) + b"\r\n"


def _chunk_sizes(reply: Reply) -> list[int]:
    sizes, left = [], reply.body_size
    for size in reply.chunks:
        if left <= 0:
            break
        sizes.append(min(size, left))
        left -= sizes[-1]
    if left > 0:
        sizes.append(left)
    return sizes


def _chunked(reply: Reply, rid: bytes, body: bytes) -> list[bytes]:
    """The chunked body as a list of pieces: one per chunk, then the last chunk and trailers."""
    pieces, offset = [], 0
    ext = b";id=" + rid + b';q="x y"' if reply.chunk_ext else b""
    for size in _chunk_sizes(reply):
        pieces.append(b"%x%s\r\n%s\r\n" % (size, ext, body[offset : offset + size]))
        offset += size
    trailer = b"".join(_line(t.name, TRAILER_MARK + t.value(rid)) for t in reply.trailers)
    pieces.append(b"0" + ext + b"\r\n" + trailer + b"\r\n")
    return pieces


def head_fields(reply: Reply, rid: bytes, body: bytes) -> list[tuple[bytes, bytes]]:
    """Every header field of the final response: the framing ones, then the end-to-end ones."""
    fields: list[tuple[bytes, bytes]] = []
    connection = []
    if reply.close and reply.version == b"1.1":
        connection.append(b"close")
    if not reply.close and reply.version == b"1.0":
        connection.append(b"keep-alive")
    if reply.nominated:
        connection.append(NOMINATED.lower())
    if connection:
        fields.append((b"Connection", b", ".join(connection)))
    if reply.keep_alive_header:
        fields.append((b"Keep-Alive", b"timeout=5, max=100"))
    if reply.nominated:
        fields.append((NOMINATED, HOP_MARK + rid))
    if reply.framing == "length":
        fields.append((b"Content-Length", b"%d" % len(body)))
    elif reply.framing == "chunked":
        fields.append((b"Transfer-Encoding", b"chunked"))
        if reply.announce_trailers and reply.trailers:
            fields.append((b"Trailer", b", ".join(t.name for t in reply.trailers)))
    fields += [(f.name, f.value(rid)) for f in reply.fields]
    return fields


def _head(
    reply: Reply, fields: list[tuple[bytes, bytes]], status_line: bytes | None = None
) -> bytes:
    if status_line is None:
        status_line = b"HTTP/%s %d %s" % (reply.version, reply.status, reply.reason)
    return status_line + b"\r\n" + b"".join(_line(n, v) for n, v in fields) + b"\r\n"


def _encoded_body(reply: Reply, rid: bytes, body: bytes) -> bytes:
    return b"".join(_chunked(reply, rid, body)) if reply.framing == "chunked" else body


@dataclass(frozen=True)
class Wire:
    """What the server writes for one attempt, and what it does next."""

    data: bytes
    writes: Writes = Writes()
    close: bool = True  # close the connection after writing
    pause_before_close: float = 0.0
    extra: bytes | None = None  # an unsolicited response, written after `extra_delay`
    extra_delay: float = 0.0


def render(spec: Spec, rid: bytes) -> Wire:
    if isinstance(spec, Reply):
        return _render_reply(spec, rid)
    if isinstance(spec, CutMidStream):
        base = spec.base
        body = body_of(base, rid)
        data = _head(base, head_fields(base, rid, body))
        if base.framing == "chunked":
            sent, pieces = 0, []
            for size, piece in zip(_chunk_sizes(base), _chunked(base, rid, body), strict=False):
                if sent + size >= spec.sent:
                    pieces.append(piece[: piece.index(b"\r\n") + 2 + spec.sent - sent])
                    break
                pieces.append(piece)
                sent += size
            data += b"".join(pieces)
        else:
            data += body[: spec.sent]
        return Wire(data, base.writes, close=True, pause_before_close=0.05)
    return Wire(_render_broken(spec, rid), spec.base.writes, close=True)


def _render_reply(reply: Reply, rid: bytes) -> Wire:
    body = body_of(reply, rid)
    data = b"".join(_interim(i, rid) for i in reply.interim)
    data += _head(reply, head_fields(reply, rid, body)) + _encoded_body(reply, rid, body)
    extra = None
    if reply.extra is not None:
        smuggled = b"smuggled <" + rid + b">"
        extra = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Smuggled: %s\r\n\r\n%s" % (
            len(smuggled),
            rid,
            smuggled,
        )
    close = reply.close or reply.framing == "eof"
    return Wire(data, reply.writes, close, extra=extra, extra_delay=reply.extra or 0.0)


def _render_broken(spec: Broken, rid: bytes) -> bytes:
    base, kind, arg = spec.base, spec.kind, spec.arg
    body = body_of(base, rid)
    fields = head_fields(base, rid, body)
    encoded = _encoded_body(base, rid, body)
    if kind == "garbage_status":
        line = GARBAGE_STATUS_LINES[arg % len(GARBAGE_STATUS_LINES)].replace(b"{id}", rid)
        return _head(base, fields, line) + encoded
    if kind == "bad_status":
        return _head(base, fields, b"HTTP/1.1 %03d Odd" % arg) + encoded
    if kind == "ctl_in_value":
        at = next(i for i, (name, _) in enumerate(fields) if name == base.fields[0].name)
        first = base.fields[0]
        fields[at] = (first.name, first.prefix + bytes([arg]) + rid + first.suffix)
        return _head(base, fields) + encoded
    if kind == "conflicting_length":
        at = next(i for i, (name, _) in enumerate(fields) if name == b"Content-Length")
        fields.insert(at + 1, (b"Content-Length", b"%d" % (len(body) + arg)))
        return _head(base, fields) + encoded
    if kind == "bad_length":
        at = next(i for i, (name, _) in enumerate(fields) if name == b"Content-Length")
        fields[at] = (b"Content-Length", BAD_LENGTHS[arg % len(BAD_LENGTHS)])
        return _head(base, fields) + encoded
    if kind == "length_and_chunked":
        return _head(base, [(b"Content-Length", b"%d" % arg), *fields]) + encoded
    if kind == "truncated_body":
        return _head(base, fields) + encoded[: len(encoded) * arg // 1000]
    if kind == "truncated_head":
        head = _head(base, fields)
        return head[: max(1, len(head) * arg // 1000)]
    if kind == "bad_chunk_size":
        pieces = _chunked(base, rid, body)
        garbage = BAD_CHUNK_SIZES[arg % len(BAD_CHUNK_SIZES)]
        pieces[0] = garbage + pieces[0][pieces[0].index(b"\r\n") :]
        return _head(base, fields) + b"".join(pieces)
    if kind == "too_many_headers":
        fields += [(b"X-Filler-%d" % i, b"f" + rid) for i in range(arg)]
        return _head(base, fields) + encoded
    if kind == "huge_head":
        value = (b"h" + rid) * (2000 // (len(rid) + 1))
        fields += [(b"X-Big-%d" % i, value) for i in range(arg // len(value) + 1)]
        return _head(base, fields) + encoded
    if kind == "unsolicited_101":
        return (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
            b"X-Upgraded: " + rid + b"\r\n\r\n\x00\x00\x12\x04" + rid
        )
    raise AssertionError(kind)


def segments(wire: Wire) -> Iterator[tuple[bytes, float]]:
    """The server's writes: pieces of `wire.data` and the pause after each."""
    size = len(wire.data)
    cuts = sorted({size * c // 1000 for c in wire.writes.cuts} - {0, size})
    start = 0
    for index, cut in enumerate([*cuts, size]):
        pauses = wire.writes.pauses
        yield wire.data[start:cut], pauses[index % len(pauses)] if pauses else 0.0
        start = cut


# The oracle


@dataclass(frozen=True)
class Expected:
    """What a client may see for one request: the response of an attempt, byte for byte
    (`exact`, by the number of attempts the upstream saw), the gateway's own 503 after that
    many attempts (`unavailable`), or a response broken off mid-body (`incomplete`)."""

    exact: dict[int, Reply] = field(default_factory=dict)
    unavailable: frozenset[int] = frozenset()
    incomplete: dict[int, Reply] = field(default_factory=dict)


def expectations(script: Script) -> Expected:
    exact: dict[int, Reply] = {}
    unavailable: set[int] = set()
    incomplete: dict[int, Reply] = {}
    first, retry = script.first, script.retry
    retried = not succeeds(first)
    if isinstance(first, Reply) and first.status < 500:
        exact[1] = first
        # A response followed by an unsolicited one: handing it over, or failing over because
        # the connection misbehaved, are both fine; leaking the extra one is not.
        retried = first.extra is not None
    if isinstance(first, CutMidStream):
        incomplete[1] = first.base
    if retried:
        if succeeds(retry):
            assert isinstance(retry, Reply)
            exact[2] = retry
            if retry.extra is not None:
                unavailable.add(2)
        else:
            unavailable.add(2)
        if isinstance(retry, CutMidStream):
            incomplete[2] = retry.base
    return Expected(exact, frozenset(unavailable), incomplete)


# Strategies

_TOKEN = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_VALUE = bytes([*range(0x21, 0x7F), 0x20, 0x09, *range(0x80, 0x100)])
_NAMES = (
    b"Content-Type", b"Set-Cookie", b"Cache-Control", b"ETag", b"Location", b"Vary", b"Link",
    b"Content-Encoding", b"Content-Range", b"Last-Modified", b"X-Storage",
)  # fmt: skip
_RESERVED = NOT_COMPARED | {b"host", b"expect", NOMINATED.lower()}
_RESERVED_PREFIXES = (b"x-hop", b"x-filler", b"x-big", b"x-smuggled", b"x-upgraded")
_MARKS = (INTERIM_MARK, TRAILER_MARK, HOP_MARK)


def chance(percent: int) -> st.SearchStrategy[bool]:
    """True `percent` times in 100; shrinks to False."""
    return st.integers(0, 99).map(lambda n: n >= 100 - percent)


def _mixed_case(name: bytes, flips: int) -> bytes:
    return bytes(
        c ^ 0x20 if chr(c).isalpha() and (flips >> (i % 16)) & 1 else c for i, c in enumerate(name)
    )


@st.composite
def field_names(draw: st.DrawFn, prefix: bytes = b"X-") -> bytes:
    if prefix == b"X-" and draw(st.booleans()):
        name = draw(st.sampled_from(_NAMES))
    else:
        token = draw(st.lists(st.sampled_from(_TOKEN), min_size=1, max_size=12).map(bytes))
        name = prefix + token
    name = _mixed_case(name, draw(st.integers(0, 0xFFFF)))
    if name.lower() in _RESERVED or name.lower().startswith(_RESERVED_PREFIXES):
        return b"X-Storage"
    return name


def value_parts(max_size: int = 16) -> st.SearchStrategy[bytes]:
    return st.lists(st.sampled_from(_VALUE), max_size=max_size).map(bytes)


@st.composite
def fields(draw: st.DrawFn, prefix: bytes = b"X-") -> Field:
    name = draw(field_names(prefix))
    before = draw(value_parts()).lstrip(b" \t")
    if before.startswith(_MARKS):
        before = b"v" + before
    after = draw(value_parts()).rstrip(b" \t")
    return Field(name, before, after)


@st.composite
def writes(draw: st.DrawFn) -> Writes:
    cuts = draw(st.lists(st.integers(0, 1000), max_size=4))
    pauses = draw(st.lists(st.sampled_from([0.0, 0.0, 0.001, 0.004]), max_size=3))
    return Writes(tuple(cuts), tuple(pauses))


def body_sizes(max_size: int = MAX_BODY) -> st.SearchStrategy[int]:
    return st.one_of(
        st.integers(0, 64),
        st.integers(0, 4096),
        st.integers(max(0, BUFFER - 2048), min(max_size, BUFFER + 2048)),
        st.integers(0, max_size),
    ).map(lambda size: min(size, max_size))


@st.composite
def replies(
    draw: st.DrawFn,
    statuses: tuple[int, ...] = FINAL_STATUSES,
    framings: tuple[str, ...] = ("length", "chunked", "eof"),
    min_body: int = 0,
    max_body: int = MAX_BODY,
    extra: bool = True,
    versions: tuple[bytes, ...] = (b"1.1", b"1.1", b"1.1", b"1.0"),
) -> Reply:
    status = draw(st.sampled_from(statuses))
    version = draw(st.sampled_from(versions))
    reason = draw(st.sampled_from([b"OK", b"", b"Whatever It Says", b"D\xe9j\xe0 vu"]))
    if status in NO_BODY:
        framing, size = "none", 0
    else:
        allowed = [f for f in framings if not (version == b"1.0" and f == "chunked")]
        framing = draw(st.sampled_from(allowed or ["length"]))
        size = max(min_body, draw(body_sizes(max_body)))
    chunked = framing == "chunked"
    close = framing == "eof" or draw(chance(30))
    interim: tuple[Interim, ...] = ()
    if version == b"1.1" and draw(chance(20)):
        interim = tuple(
            draw(
                st.lists(
                    st.builds(
                        Interim,
                        st.sampled_from([100, 102, 103]),
                        st.lists(fields(b"X-Hint-"), max_size=3).map(tuple),
                    ),
                    min_size=1,
                    max_size=3,
                )
            )
        )
    trailers: tuple[Field, ...] = ()
    if chunked and draw(chance(30)):
        trailers = tuple(draw(st.lists(fields(b"X-Trailer-"), min_size=1, max_size=3)))
    return Reply(
        status=status,
        version=version,
        reason=reason,
        fields=tuple(draw(st.lists(fields(), max_size=8))),
        framing=framing,
        body_size=size,
        body_seed=draw(st.integers(0, 2**16)),
        chunks=tuple(draw(st.lists(st.integers(1, 70_000), max_size=8))) if chunked else (),
        chunk_ext=chunked and draw(chance(30)),
        trailers=trailers,
        announce_trailers=bool(trailers) and draw(st.booleans()),
        close=close,
        keep_alive_header=draw(chance(20)),
        nominated=draw(chance(15)),
        interim=interim,
        extra=(
            draw(st.sampled_from(EXTRA_DELAYS))
            if extra and not close and draw(chance(15))
            else None
        ),
        writes=draw(writes()),
    )


@st.composite
def broken(draw: st.DrawFn) -> Broken:
    kind = draw(st.sampled_from(BROKEN_KINDS))
    small = BUFFER - 1024
    if kind in ("conflicting_length", "bad_length"):
        base = draw(replies(statuses=(200, 404), framings=("length",), extra=False))
    elif kind in ("length_and_chunked", "bad_chunk_size"):
        base = draw(replies((200, 404), ("chunked",), extra=False, versions=(b"1.1",)))
    elif kind == "truncated_body":
        base = draw(replies((200, 206), ("length", "chunked"), min_body=1, max_body=small))
    else:
        base = draw(replies(extra=False))
    base = replace(base, extra=None, interim=())  # a malformed response has neither
    if kind == "ctl_in_value" and not base.fields:
        base = replace(base, fields=(Field(b"X-Storage"),))
    arg = {
        "garbage_status": st.integers(0, len(GARBAGE_STATUS_LINES) - 1),
        "bad_status": st.integers(0, 99) | st.integers(600, 999),
        "ctl_in_value": st.sampled_from(CONTROL_BYTES).map(ord),
        "conflicting_length": st.integers(1, 1000),
        "bad_length": st.integers(0, len(BAD_LENGTHS) - 1),
        "length_and_chunked": st.integers(0, 1000),
        "truncated_body": st.integers(0, 999),
        "truncated_head": st.integers(1, 999),
        "bad_chunk_size": st.integers(0, len(BAD_CHUNK_SIZES) - 1),
        "too_many_headers": st.integers(MAX_HEADER_COUNT + 1, 3 * MAX_HEADER_COUNT),
        "huge_head": st.integers(MAX_HEADER_BYTES + 1024, 2 * MAX_HEADER_BYTES),
        "unsolicited_101": st.just(0),
    }[kind]
    return Broken(kind, draw(arg), base)


@st.composite
def cut_mid_stream(draw: st.DrawFn) -> CutMidStream:
    base = draw(
        replies((200, 206), ("length", "chunked"), BUFFER + 8192, extra=False, versions=(b"1.1",))
    )
    sent = draw(st.integers(BUFFER + 4096, base.body_size - 1))
    return CutMidStream(base, sent)


def specs(well_formed: int, malformed: int, cut: int) -> st.SearchStrategy[Spec]:
    """A response spec: well-formed, malformed or cut mid-stream, in these proportions."""
    # One strategy object per share: one_of drops repeats of the same object. (And one_of, not
    # flatmap: hypothesis shrinks one_of far better.)
    choices: list[st.SearchStrategy[Spec]] = [replies() for _ in range(well_formed)]
    choices += [broken() for _ in range(malformed)]
    choices += [cut_mid_stream() for _ in range(cut)]
    return st.one_of(choices)


@st.composite
def batches(draw: st.DrawFn, max_requests: int = 8) -> Batch:
    scripts = draw(
        st.lists(
            st.builds(
                Script,
                first=specs(3, 2, 1),
                retry=specs(6, 1, 1),
                delay=st.sampled_from([0.0, 0.0, 0.002, 0.01, 0.03]),
            ),
            min_size=1,
            max_size=max_requests,
        )
    )
    return Batch(tuple(scripts), draw(st.integers(1, 4)))


# The scripted upstream


def request_id_of(head: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"x-request-id":
            return value.strip()
    return None


UNSCRIPTED = Reply(status=200, fields=(Field(b"X-Unscripted"),), body_size=40, body_seed=1)


class ScriptedUpstream:
    """One upstream listening on several ports of 127.0.0.1: the n-th request it receives with
    a given X-Request-ID, on any port, is answered with `scripts[id][n]`."""

    def __init__(self, scripts: dict[bytes, list[Spec]]) -> None:
        self.scripts = scripts
        self.arrivals: dict[bytes, list[int]] = defaultdict(list)  # id -> listener ports
        self.unknown: list[bytes] = []
        self.errors: list[str] = []
        self.ports: list[int] = []
        self._servers: list[asyncio.Server] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, listeners: int = 2) -> None:
        for _ in range(listeners):
            server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            self._servers.append(server)
            self.ports.append(port)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for writer in self._writers:
            writer.transport.abort()
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=2.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        port = writer.get_extra_info("sockname")[1]
        try:
            while await self._answer_one(reader, writer, port):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass  # closing: asyncio's stream callback would log a cancelled handler as an error
        finally:
            writer.close()
            self._writers.discard(writer)
            self._tasks.discard(task)

    async def _answer_one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int
    ) -> bool:
        """Answer one request; False when the connection is done."""
        head = await reader.readuntil(b"\r\n\r\n")
        rid = request_id_of(head)
        if rid is None:
            self.unknown.append(head)
            rid = b"no-request-id"
        attempt = len(self.arrivals[rid])
        self.arrivals[rid].append(port)
        script = self.scripts.get(rid, [])
        spec = script[attempt] if attempt < len(script) else UNSCRIPTED
        wire = render(spec, rid)
        pieces = list(segments(wire))
        for index, (piece, pause) in enumerate(pieces):
            if index == len(pieces) - 1 and wire.extra is not None and not wire.extra_delay:
                piece += wire.extra  # in the same write as the end of the real response
            writer.write(piece)
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)
        if wire.extra is not None and wire.extra_delay:
            await asyncio.sleep(wire.extra_delay)
            writer.write(wire.extra)
            await writer.drain()
        if wire.close:
            if wire.pause_before_close:
                await asyncio.sleep(wire.pause_before_close)
            return False
        return True
