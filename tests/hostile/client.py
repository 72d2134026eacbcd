"""A strict HTTP/1.1 client that reports exactly what it received, byte for byte.

The suite cannot use httpx or http.client to judge a gateway: they hide what matters here
(interim responses, a body shorter than its framing promised, a second Content-Type, a response
head of 50 MB). This client parses responses itself, as RFC 9112 says a client must: it skips
1xx interim responses and waits for the final one, frames the body by Transfer-Encoding, then
Content-Length, then connection close, and hashes the body as it reads so a 100 MB body is never
held in memory. Every read is bounded by a deadline.
"""

import asyncio
import contextlib
import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

HEAD_LIMIT = 1024 * 1024  # a response head larger than this is reported, not read
KEEP_BYTES = 64 * 1024  # the start of the body is kept for inspection; the rest is only hashed
READ_SIZE = 256 * 1024
DEFAULT_TIMEOUT_S = 10.0

_STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?: ([^\r\n]*))?")


@dataclass
class Got:
    """One exchange as the client saw it."""

    status: int | None = None
    interim: list[int] = field(default_factory=list)
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body_len: int = 0
    body: bytes = b""  # the first KEEP_BYTES of the body
    sha256: str = ""
    framing: str = "none"  # length | chunked | close | none (no body allowed)
    declared_length: int | None = None
    complete: bool = False  # the framing's end was reached (length, last chunk, or EOF)
    error: str | None = None  # what went wrong on the wire, if anything
    head_bytes: int = 0
    elapsed_s: float = 0.0
    raw_start: bytes = b""  # the first bytes received, for reports about garbage

    def values(self, name: str) -> list[bytes]:
        key = name.lower().encode()
        return [value for header, value in self.headers if header == key]

    def value(self, name: str) -> bytes | None:
        values = self.values(name)
        return values[0] if values else None

    @property
    def ok_complete(self) -> bool:
        """A 2xx whose framing says the whole body arrived."""
        return self.status is not None and 200 <= self.status < 300 and self.complete

    def summary(self) -> str:
        """A few words for the scoreboard: '200 full 256 B', '503', '103 then EOF', ..."""
        prefix = "".join(f"{code}→" for code in self.interim)
        if self.status is None:
            return prefix + (self.error or "nothing")
        text = f"{prefix}{self.status}"
        if self.framing != "none" or self.body_len:
            text += f" {_size(self.body_len)}"
            if self.declared_length is not None and self.declared_length != self.body_len:
                text += f" of {_size(self.declared_length)}"
        if not self.complete:
            text += " incomplete"
        if self.error:
            text += f" ({self.error})"
        return text


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n} B"


def request_bytes(
    target: str,
    request_id: str | None = None,
    *,
    method: str = "GET",
    version: str = "HTTP/1.1",
    host: bytes | None = b"gateway",
    close: bool = True,
    extra: Sequence[tuple[bytes, bytes]] = (),
) -> bytes:
    """One request head; `host=None` leaves the Host header out."""
    lines = [f"{method} {target} {version}".encode()]
    if host is not None:
        lines.append(b"Host: " + host)
    if request_id is not None:
        lines.append(b"X-Request-ID: " + request_id.encode())
    if close:
        lines.append(b"Connection: close")
    lines += [name + b": " + value for name, value in extra]
    return b"\r\n".join(lines) + b"\r\n\r\n"


class _Reader:
    """Reads one response after another from a stream, each bounded by the caller's deadline."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.buffer = bytearray()
        self.eof = False

    async def fill(self) -> bool:
        if self.eof:
            return False
        chunk = await self.reader.read(READ_SIZE)
        if not chunk:
            self.eof = True
            return False
        self.buffer += chunk
        return True

    async def head(self, got: Got) -> bytes | None:
        """Bytes up to and including the blank line; None (with got.error) if none came."""
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self.buffer[: end + 4])
                del self.buffer[: end + 4]
                return head
            if len(self.buffer) > HEAD_LIMIT:
                got.error = f"head > {_size(HEAD_LIMIT)}"
                got.head_bytes = len(self.buffer)
                return None
            if not await self.fill():
                got.error = "EOF before a complete head" if self.buffer else "EOF, no response"
                return None

    async def take(self, n: int) -> bytes:
        """Up to n bytes (fewer only at EOF)."""
        while len(self.buffer) < n and await self.fill():
            pass
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    async def line(self) -> bytes | None:
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                data = bytes(self.buffer[:end])
                del self.buffer[: end + 2]
                return data
            if len(self.buffer) > 64 * 1024 or not await self.fill():
                return None


class _Body:
    def __init__(self, got: Got) -> None:
        self.got = got
        self.hash = hashlib.sha256()

    def add(self, data: bytes) -> None:
        got = self.got
        if len(got.body) < KEEP_BYTES:
            got.body += data[: KEEP_BYTES - len(got.body)]
        got.body_len += len(data)
        self.hash.update(data)

    def done(self) -> None:
        self.got.sha256 = self.hash.hexdigest()


def _parse_head(head: bytes, got: Got) -> bool:
    got.head_bytes += len(head)
    lines = head[:-4].split(b"\r\n")
    match = _STATUS_LINE.fullmatch(lines[0])
    if match is None:
        got.error = f"no status line: {lines[0][:40]!r}"
        return False
    got.status = int(match.group(3))
    got.headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            got.error = f"header line without a colon: {line[:40]!r}"
            return False
        got.headers.append((name.strip().lower(), value.strip(b" \t")))
    return True


async def _read_response(stream: _Reader, got: Got, method: str) -> None:
    while True:
        head = await stream.head(got)
        if head is None:
            got.raw_start = got.raw_start or bytes(stream.buffer[:80])
            return
        got.raw_start = got.raw_start or head[:80]
        if not _parse_head(head, got):
            return
        assert got.status is not None
        if 100 <= got.status < 200 and got.status != 101:
            got.interim.append(got.status)
            got.status = None
            continue
        break
    body = _Body(got)
    try:
        await _read_body(stream, got, method, body)
    finally:
        body.done()


async def _read_body(stream: _Reader, got: Got, method: str, body: _Body) -> None:
    status = got.status
    assert status is not None
    if method == "HEAD" or status in (101, 204, 304):
        got.complete = True
        return
    encodings = b",".join(got.values("transfer-encoding")).lower()
    lengths = got.values("content-length")
    if encodings:
        if encodings.rsplit(b",", 1)[-1].strip() != b"chunked":
            got.framing = "close"
            await _read_to_eof(stream, body)
            got.complete = True
            return
        got.framing = "chunked"
        await _read_chunked(stream, got, body)
        return
    if lengths:
        got.framing = "length"
        if len(set(lengths)) != 1 or not lengths[0].isdigit():
            got.error = f"unusable content-length {lengths!r}"
            return
        got.declared_length = int(lengths[0])
        remaining = got.declared_length
        while remaining:
            data = await stream.take(min(remaining, READ_SIZE))
            if not data:
                got.error = "EOF inside the body"
                return
            body.add(data)
            remaining -= len(data)
        got.complete = True
        return
    got.framing = "close"
    await _read_to_eof(stream, body)
    got.complete = True


async def _read_to_eof(stream: _Reader, body: _Body) -> None:
    while True:
        if stream.buffer:
            body.add(bytes(stream.buffer))
            stream.buffer.clear()
        if not await stream.fill():
            return


async def _read_chunked(stream: _Reader, got: Got, body: _Body) -> None:
    while True:
        size_line = await stream.line()
        if size_line is None:
            got.error = "EOF inside the chunked body"
            return
        size_text = size_line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            got.error = f"bad chunk size {size_line[:20]!r}"
            return
        if size == 0:
            break
        data = await stream.take(size)
        body.add(data)
        if len(data) < size or await stream.take(2) != b"\r\n":
            got.error = "EOF inside the chunked body"
            return
    while True:
        line = await stream.line()
        if line is None:
            got.error = "EOF inside the trailers"
            return
        if not line:
            got.complete = True
            return
        name, _, value = line.partition(b":")
        got.trailers.append((name.strip().lower(), value.strip()))


async def exchange(
    port: int,
    request: bytes,
    *,
    method: str = "GET",
    timeout_s: float = DEFAULT_TIMEOUT_S,
    responses: int = 1,
) -> list[Got]:
    """Send `request` (raw bytes, possibly several pipelined requests) and read `responses`."""
    started = time.monotonic()
    results: list[Got] = []
    writer: asyncio.StreamWriter | None = None
    current = Got()
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            await writer.drain()
            stream = _Reader(reader)
            for _ in range(responses):
                current = Got()
                results.append(current)
                await _read_response(stream, current, method)
                current.elapsed_s = time.monotonic() - started
                if current.status is None or not current.complete or current.error:
                    break
    except TimeoutError:
        current.error = current.error or f"timeout after {timeout_s:g} s"
    except (ConnectionResetError, BrokenPipeError):
        current.error = current.error or "conn reset"
    except OSError as error:
        current.error = current.error or f"socket error: {error.strerror or error}"
    finally:
        if not results:
            results.append(current)
        current.elapsed_s = time.monotonic() - started
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
    return results


async def fetch(
    port: int,
    target: str,
    request_id: str | None = None,
    *,
    method: str = "GET",
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Got:
    """One request on a fresh connection (`Connection: close`), as the client saw it."""
    request = request_bytes(target, request_id, method=method)
    return (await exchange(port, request, method=method, timeout_s=timeout_s))[0]


async def fetch_raw(port: int, request: bytes, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Got:
    return (await exchange(port, request, timeout_s=timeout_s))[0]


async def read_one(reader: asyncio.StreamReader, *, method: str = "GET") -> Got:
    """One response from a connection the caller opened and wrote to, as `exchange` reads it;
    the caller bounds the time. A reset reads as `conn reset`."""
    got = Got()
    started = time.monotonic()
    try:
        await _read_response(_Reader(reader), got, method)
    except (ConnectionResetError, BrokenPipeError):
        got.error = got.error or "conn reset"
    got.elapsed_s = time.monotonic() - started
    return got


async def count_responses(reader: asyncio.StreamReader) -> tuple[int, Got]:
    """Read responses to pipelined GETs until one is not a whole answer (the connection ended,
    or a response was cut or unreadable): how many whole ones came, and that last one."""
    stream = _Reader(reader)
    whole = 0
    while True:
        got = Got()
        try:
            await _read_response(stream, got, "GET")
        except (ConnectionResetError, BrokenPipeError):
            got.error = got.error or "conn reset"
        if got.status is None or not got.complete or got.error:
            return whole, got
        whole += 1
