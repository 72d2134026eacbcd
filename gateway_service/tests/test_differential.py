"""Differential test: random well-formed and malformed upstream responses, sent to concurrent
requests through the real gateway (create_app, its real ConnectionPool, its own HTTP server on
127.0.0.1), compared with what the clients receive.

One scripted upstream (upstream_fuzz.py) listens on two ports, both listed in STORAGE_SERVICES;
it answers the n-th arrival of each X-Request-ID with that request's n-th scripted response, and
embeds the id in every header value and body it produces. The invariants, each broken one raising
its own exception class so that hypothesis shrinks and reports each separately:

1. A client never receives bytes produced for another request (CrossTalk; SmuggledResponse when
   they come from an unsolicited response the upstream sent after another request's answer).
2. A well-formed response arrives byte-identical: status, body, end-to-end headers (hop-by-hop
   ones, date, server and content-length aside; content-length, when sent, is the body's length,
   and absent for 204/304); 1xx interim responses and trailers never show; it is not retried
   (StatusMismatch, HeaderMismatch, BodyMismatch, InterimLeak, TrailerAsHeader,
   HopByHopForwarded, FramingViolation, WellFormedRetried).
3. A malformed response (or a 5xx) is a failed attempt, retried once on the other listener: the
   client gets the retry's well-formed response byte-identical, or, when that fails too, the
   gateway's 503 JSON with Retry-After (MalformedPassedThrough, RetryMismatch,
   UnexpectedUnavailable, BadUnavailable, BrokenResponse). A body cut after more than the
   response buffer was sent must reach the client as a broken response, never as a complete
   shorter one (ShortBodyAsComplete).
4. The gateway stays healthy: after each example GET /health answers 200 within a short bound and
   a plain request still gets its response (Unhealthy); nothing waits forever (Hang).

Each example starts a fresh upstream, gateway and server, so examples replay alike when
hypothesis shrinks them. REGRESSIONS run first, every time. Environment: DIFFERENTIAL_EXAMPLES
(random examples after those, default 75: about a minute in all), DIFFERENTIAL_LOOP=uvloop (run
on uvloop, as production does), DIFFERENTIAL_RACY_EXTRA=1 (also send unsolicited responses a few
ms after the real one; see upstream_fuzz.EXTRA_DELAYS). With CI set the examples are the same on
every run.
"""

import asyncio
import json
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, note, settings

from gateway_service.app import Gateway, create_app
from gateway_service.limits import MAX_HEADER_BYTES, MAX_HEADER_COUNT
from gateway_service.logs import EventLog
from gateway_service.proxy import SINGLE_VALUED
from gateway_service.settings import load_settings
from gateway_service.tests.conftest import LogSink
from gateway_service.tests.fakes import serving
from gateway_service.tests.upstream_fuzz import (
    BAD_CHUNK_SIZES,
    BAD_LENGTHS,
    BUFFER,
    GARBAGE_STATUS_LINES,
    HOP_BY_HOP,
    HOP_MARK,
    INTERIM_MARK,
    MAX_BODY,
    NO_BODY,
    NOT_COMPARED,
    TRAILER_MARK,
    Batch,
    Broken,
    CutMidStream,
    Field,
    Interim,
    Reply,
    Script,
    ScriptedUpstream,
    Spec,
    Writes,
    batches,
    body_of,
    expectations,
    render,
    succeeds,
)

CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
EXAMPLES = int(os.environ.get("DIFFERENTIAL_EXAMPLES", "75"))
RETRY_AFTER = 1
EXAMPLE_TIMEOUT = 40.0  # seconds for one whole example, start-up and shutdown included
HEALTH_WITHIN = 2.0
NO_COOKIES = CookieJar(DefaultCookiePolicy(allowed_domains=[]))
PLAIN = Reply(fields=(Field(b"Content-Type", b"text/plain; id="),), body_size=64, body_seed=7)


class Violation(AssertionError):
    """An invariant does not hold; the subclass says which."""


class CrossTalk(Violation):
    """1: a client received bytes produced for another request."""


class SmuggledResponse(CrossTalk):
    """1: the bytes came from an unsolicited response sent after another request's answer."""


class StatusMismatch(Violation):
    """2: the status differs from the upstream's."""


class InterimLeak(Violation):
    """2: a 1xx interim response, or its headers, reached the client."""


class TrailerAsHeader(Violation):
    """2: a trailer field reached the client as a header."""


class HopByHopForwarded(Violation):
    """2: a hop-by-hop field of the upstream reached the client."""


class HeaderMismatch(Violation):
    """2: the end-to-end headers differ from the upstream's."""


class BodyMismatch(Violation):
    """2: the body differs from the upstream's."""


class FramingViolation(Violation):
    """2: Content-Length disagrees with the body, or is sent with a 204/304."""


class MalformedPassedThrough(Violation):
    """3: a malformed (or 5xx) attempt's answer reached the client."""


class WellFormedRetried(Violation):
    """2: a well-formed response was taken for a failure and the request sent again."""


class RetryMismatch(Violation):
    """3: the upstream saw the wrong number of attempts, or a retry on the same listener."""


class UnexpectedUnavailable(Violation):
    """3: the gateway answered 503 where an attempt gave a well-formed response."""


class BadUnavailable(Violation):
    """3: the gateway's own 503 lacks its JSON body, Retry-After or X-Request-ID."""


class BrokenResponse(Violation):
    """3: the client saw a broken connection where a complete response was due."""


class ShortBodyAsComplete(Violation):
    """3: a body cut mid-stream reached the client as a complete response."""


class Unhealthy(Violation):
    """4: /health or a plain request failed after the example."""


class GatewayRaised(Violation):
    """4: an exception escaped the gateway's code (its server or asyncio logged it)."""


class Hang(Violation):
    """4: something did not finish within its bound."""


PRIORITY = (
    CrossTalk,
    SmuggledResponse,
    ShortBodyAsComplete,
    MalformedPassedThrough,
    TrailerAsHeader,
    HopByHopForwarded,
    InterimLeak,
    HeaderMismatch,
    BodyMismatch,
    StatusMismatch,
    UnexpectedUnavailable,
    WellFormedRetried,
    RetryMismatch,
    BadUnavailable,
    BrokenResponse,
    FramingViolation,
    Unhealthy,
    GatewayRaised,
    Hang,
)
# Log lines that say an exception escaped: the server's `app_error` for the ASGI app, asyncio's
# for protocol callbacks and tasks.
CRASHES = (
    '"event":"app_error"',
    "asyncio: Fatal error",
    "asyncio: Exception in callback",
    "asyncio: Task exception was never retrieved",
)


# What a client received


@dataclass
class Received:
    status: int | None
    headers: list[tuple[bytes, bytes]]
    body: bytes
    error: str | None = None  # the transport error that broke the response off
    timed_out: bool = False

    def summary(self) -> str:
        head = f"status {self.status}, headers {self.headers!r:.1500}"
        tail = f", error {self.error}" if self.error else ""
        return f"{head}, body {len(self.body)} bytes {self.body[:200]!r}{tail}"


async def fetch(client: httpx.AsyncClient, rid: bytes, delay: float = 0.0) -> Received:
    if delay:
        await asyncio.sleep(delay)
    got = Received(None, [], b"")
    chunks = []
    try:
        async with client.stream("GET", "/data", headers={"x-request-id": rid.decode()}) as r:
            got.status, got.headers = r.status_code, list(r.headers.raw)
            async for chunk in r.aiter_raw():  # raw: a Content-Encoding is not ours to decode
                chunks.append(chunk)
    except httpx.TransportError as error:
        got.error = f"{type(error).__name__}: {error}"
        got.timed_out = isinstance(error, httpx.TimeoutException)
    got.body = b"".join(chunks)
    return got


# The checks


ARG_TABLES = {
    "garbage_status": GARBAGE_STATUS_LINES,
    "bad_length": BAD_LENGTHS,
    "bad_chunk_size": BAD_CHUNK_SIZES,
}


def describe(spec: Spec) -> str:
    if isinstance(spec, Broken):
        arg: object = spec.arg
        if spec.kind in ARG_TABLES:
            table = ARG_TABLES[spec.kind]
            arg = table[spec.arg % len(table)]
        elif spec.kind == "ctl_in_value":
            arg = bytes([spec.arg])
        return f"Broken {spec.kind}({arg!r}) of [{describe(spec.base)}]"
    if isinstance(spec, CutMidStream):
        return f"CutMidStream after {spec.sent} bytes of [{describe(spec.base)}]"
    parts = [f"{spec.status} HTTP/{spec.version.decode()} {spec.framing} body={spec.body_size}"]
    if spec.chunks:
        parts.append(f"chunks={list(spec.chunks)}")
    if spec.trailers:
        parts.append(f"trailers={len(spec.trailers)}")
    if spec.interim:
        parts.append(f"interim={[i.status for i in spec.interim]}")
    if spec.close:
        parts.append("close")
    if spec.nominated:
        parts.append("nominated-hop-by-hop")
    if spec.extra is not None:
        parts.append(f"extra-response-after={spec.extra}s")
    parts.append(f"fields={len(spec.fields)}")
    return " ".join(parts)


def _grouped(headers: list[tuple[bytes, bytes]]) -> dict[bytes, list[bytes]]:
    """Field values per lower-case name, in order, leaving out the ones not compared."""
    grouped: dict[bytes, list[bytes]] = defaultdict(list)
    for name, value in headers:
        if name.lower() not in NOT_COMPARED:
            grouped[name.lower()].append(value)
    return dict(grouped)


def _passed_on(fields: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The fields as the gateway passes them on: of a single-valued one sent twice, the first."""
    seen: set[bytes] = set()
    passed = []
    for name, value in fields:
        lowered = name.lower()
        if lowered in SINGLE_VALUED:
            if lowered in seen:
                continue
            seen.add(lowered)
        passed.append((name, value))
    return passed


def _values(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [v for n, v in headers if n.lower() == name]


def is_gateway_503(got: Received) -> bool:
    if got.status != 503:
        return False
    try:
        document = json.loads(got.body)
    except ValueError:
        return False
    return isinstance(document, dict) and isinstance(document.get("detail"), str)


def compare_head(reply: Reply, rid: bytes, got: Received, where: str) -> None:
    """Invariant 2 for the status and headers."""
    assert got.status is not None
    if 100 <= got.status < 200 or any(v.startswith(INTERIM_MARK) for _, v in got.headers):
        raise InterimLeak(f"{where}: expected status {reply.status}")
    if got.status != reply.status:
        raise StatusMismatch(f"{where}: expected status {reply.status}")
    if any(v.startswith(TRAILER_MARK) for _, v in got.headers):
        raise TrailerAsHeader(where)
    for name, value in got.headers:
        name = name.lower()
        if (
            value.startswith(HOP_MARK)
            or name in HOP_BY_HOP - {b"connection", b"transfer-encoding"}
            or (name == b"connection" and value.lower() != b"close")
            or (name == b"transfer-encoding" and value.lower() != b"chunked")
        ):
            raise HopByHopForwarded(f"{where}: {name!r}: {value!r}")
    expected = _passed_on([(f.name, f.value(rid)) for f in reply.fields])
    if _grouped(got.headers) != _grouped(expected):
        raise HeaderMismatch(f"{where}: expected end-to-end headers {_grouped(expected)!r:.1500}")
    if _values(got.headers, b"x-request-id") != [rid]:
        raise HeaderMismatch(f"{where}: X-Request-ID is not exactly {rid!r}")


def compare(reply: Reply, rid: bytes, got: Received, where: str) -> None:
    """Invariant 2: `got` is `reply`, byte for byte, as the gateway must pass it on."""
    compare_head(reply, rid, got, where)
    body = body_of(reply, rid)
    if got.body != body:
        same = next(
            (i for i, (a, b) in enumerate(zip(got.body, body, strict=False)) if a != b), None
        )
        raise BodyMismatch(
            f"{where}: expected {len(body)} bytes, got {len(got.body)}; first difference at "
            f"{same if same is not None else min(len(body), len(got.body))}"
        )
    lengths = _values(got.headers, b"content-length")
    if reply.status in NO_BODY and lengths:
        raise FramingViolation(f"{where}: content-length {lengths!r} on a {reply.status}")
    if reply.status not in NO_BODY and lengths not in ([], [b"%d" % len(body)]):
        raise FramingViolation(f"{where}: content-length {lengths!r} for {len(body)} bytes")


def check(
    rid: bytes, script: Script, got: Received, arrivals: list[int], others: list[bytes], log: str
) -> None:
    """Every invariant for one request."""
    where = (
        f"request {rid.decode()} [first attempt: {describe(script.first)}; "
        f"retry: {describe(script.retry)}] upstream saw {len(arrivals)} attempt(s) on ports "
        f"{arrivals}; client received {got.summary()}; gateway log: {log}"
    )
    blob = b"".join(n + b": " + v + b"\n" for n, v in got.headers) + got.body
    leaked = [other for other in others if other in blob]
    if any(b"smuggled <" + other in blob for other in leaked):
        raise SmuggledResponse(f"{where}: contains the unsolicited response for {leaked!r}")
    if leaked:
        raise CrossTalk(f"{where}: contains bytes for {leaked!r}")
    expected = expectations(script)
    attempts = len(arrivals)
    if attempts > 2 or (attempts == 2 and arrivals[0] == arrivals[1]):
        raise RetryMismatch(f"{where}: expected one attempt per listener at most")
    if got.timed_out:
        raise Hang(f"{where}: the client timed out")
    if got.error is not None:
        cut = expected.incomplete.get(attempts)
        if cut is None:
            if _logged_interim(log):
                # The gateway sent the 1xx as the response; the client kept waiting for a final one.
                raise InterimLeak(f"{where}: the gateway answered with a 1xx status")
            raise BrokenResponse(where)
        full = body_of(cut, rid)
        if got.status is not None:  # the head came before the connection broke: it is exact
            compare_head(cut, rid, got, where)
            if _values(got.headers, b"content-length") not in ([], [b"%d" % len(full)]):
                raise FramingViolation(f"{where}: content-length is not the whole body's")
        if not full.startswith(got.body):
            raise BodyMismatch(f"{where}: the partial body is not the start of the upstream's")
        return
    if is_gateway_503(got):
        if attempts not in expected.unavailable:
            if expected.exact or expected.incomplete:
                raise UnexpectedUnavailable(where)
            raise RetryMismatch(f"{where}: expected 503 after 2 attempts")
        if _values(got.headers, b"retry-after") != [str(RETRY_AFTER).encode()]:
            raise BadUnavailable(f"{where}: Retry-After is not exactly {RETRY_AFTER}")
        if _values(got.headers, b"x-request-id") != [rid]:
            raise BadUnavailable(f"{where}: X-Request-ID is not exactly {rid!r}")
        return
    reply = expected.exact.get(attempts)
    if reply is not None:
        compare(reply, rid, got, where)
        return
    cut = expected.incomplete.get(attempts)
    if cut is not None and got.status == cut.status:
        raise ShortBodyAsComplete(where)
    if attempts == 2 and succeeds(script.first):
        raise WellFormedRetried(where)
    if (attempts == 1 and not succeeds(script.first)) or attempts == 2:
        raise MalformedPassedThrough(where)
    raise RetryMismatch(f"{where}: a failed first attempt was not retried")


# One example: a fresh upstream, gateway and client


@contextmanager
def captured_logs() -> Iterator[list[str]]:
    """What asyncio logs (exceptions in protocol callbacks and tasks)."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Keep(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    loggers = [logging.getLogger("asyncio")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield lines
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def request_ids(count: int) -> list[bytes]:
    """Ids of one length, none inside another."""
    return [b"req%02d-7f3a9c" % i for i in range(count)]


async def exchange(batch: Batch) -> None:
    rids = request_ids(len(batch.requests) + 1)
    plain = rids.pop()
    for rid, script in zip(rids, batch.requests, strict=True):
        for attempt, spec in (("first", script.first), ("retry", script.retry)):
            note(f"{rid.decode()} {attempt}: {describe(spec)}: {render(spec, rid).data[:300]!r}")
    upstream = ScriptedUpstream(
        {
            **{rid: [s.first, s.retry] for rid, s in zip(rids, batch.requests, strict=True)},
            plain: [PLAIN],
        }
    )
    await upstream.start(listeners=2)
    logs = LogSink()
    log = EventLog(logs, fmt="json")  # type: ignore[arg-type]
    gateway = create_app(
        load_settings(
            storage_services=",".join(f"http://127.0.0.1:{port}" for port in upstream.ports),
            health_interval=0,  # the scripted upstream answers /data only
            # A failed attempt must not take its listener out of rotation for the other
            # requests: invariant 3 is about the retry within one request.
            max_fails=1_000_000,
            read_timeout=3.0,
            retry_after=RETRY_AFTER,
        ),
        log=log,
    )
    done: dict[bytes, Received] = {}
    try:
        with captured_logs() as errors:
            async with asyncio.timeout(EXAMPLE_TIMEOUT):
                # A 1xx the gateway passed on would leave the client waiting for the final
                # response until the connection's deadline: 1 s rather than 10 keeps it short.
                async with gateway.running(), serving(gateway, log, client_timeout=1) as port:
                    base_url = f"http://127.0.0.1:{port}"
                    limits = httpx.Limits(
                        max_connections=batch.client_connections,
                        max_keepalive_connections=batch.client_connections,
                    )
                    async with httpx.AsyncClient(
                        base_url=base_url,
                        limits=limits,
                        timeout=10.0,
                        cookies=NO_COOKIES,  # Set-Cookie values are random bytes: never send them
                    ) as client:

                        async def one(rid: bytes, script: Script) -> None:
                            done[rid] = await fetch(client, rid, script.delay)

                        await asyncio.gather(
                            *(one(r, s) for r, s in zip(rids, batch.requests, strict=True))
                        )
                        gateway.log.flush()
                        violations: list[Violation] = []
                        for rid, script in zip(rids, batch.requests, strict=True):
                            others = [r for r in [*rids, plain] if r != rid]
                            line = _log_for(logs, rid, errors)
                            try:
                                check(rid, script, done[rid], upstream.arrivals[rid], others, line)
                            except Violation as violation:
                                violations.append(violation)
                        try:
                            await _still_healthy(base_url, plain, rids, upstream, gateway, errors)
                        except Violation as violation:
                            violations.append(violation)
                        gateway.log.flush()
                        lines = [*errors, *logs.text.splitlines()]
                        crashes = [line for line in lines if any(c in line for c in CRASHES)]
                        if crashes:
                            violations.append(GatewayRaised(" | ".join(crashes)[:3000]))
                        if violations:
                            # One per example: the rarest kind, so a common one does not hide it.
                            raise min(violations, key=lambda v: PRIORITY.index(type(v)))
    except TimeoutError:
        pending = [rid.decode() for rid in rids if rid not in done]
        raise Hang(f"example not done within {EXAMPLE_TIMEOUT} s; pending: {pending}") from None
    finally:
        await upstream.close()


async def _still_healthy(
    base_url: str,
    plain: bytes,
    rids: list[bytes],
    upstream: ScriptedUpstream,
    gateway: Gateway,
    errors: list[str],
) -> None:
    """Invariant 4, on a new client connection: the gateway, not the example's connections."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0, cookies=NO_COOKIES) as client:
        try:
            async with asyncio.timeout(HEALTH_WITHIN):
                health = await client.get("/health")
        except (TimeoutError, httpx.HTTPError) as error:
            raise Unhealthy(f"GET /health: {type(error).__name__}: {error}") from None
        if health.status_code != 200:
            raise Unhealthy(f"GET /health answered {health.status_code}: {health.text:.300}")
        try:
            async with asyncio.timeout(HEALTH_WITHIN * 2):
                got = await fetch(client, plain)
        except TimeoutError:
            raise Unhealthy("a plain request after the example did not finish") from None
    try:
        check(plain, Script(PLAIN, PLAIN), got, upstream.arrivals[plain], rids, "")
    except CrossTalk:
        raise
    except Violation as error:
        gateway.log.flush()
        assert isinstance(gateway.log.stream, LogSink)
        log = _log_for(gateway.log.stream, plain, errors)
        raise Unhealthy(f"a plain request after the example: {error}; {log}") from None


def _logged_interim(log: str) -> bool:
    """The gateway's access line says it answered with a 1xx status."""
    return any(f'"status":{code},' in log for code in range(100, 200))


def _log_for(logs: LogSink, rid: bytes, errors: list[str]) -> str:
    lines = [line for line in logs.text.splitlines() if rid.decode() in line]
    return " | ".join([*lines, *errors])[:3000]


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if os.environ.get("DIFFERENTIAL_LOOP") == "uvloop":
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(coroutine)


OK = Reply(fields=(Field(b"X-Storage"),), body_size=16)
CHUNKED = Reply(fields=(Field(b"X-Storage"),), body_size=16, framing="chunked")


def _alone(first: Spec, retry: Spec = OK) -> Batch:
    return Batch((Script(first, retry),))


def _pause_after_interim(reply: Reply, pause: float) -> Reply:
    """`reply`, its final response written `pause` seconds after its 1xx."""
    interim = len(render(replace(reply, interim=reply.interim[:1], fields=()), b"").data)
    interim -= len(render(replace(reply, interim=(), fields=()), b"").data)
    size = len(render(reply, request_ids(1)[0]).data)
    return replace(reply, writes=Writes((interim * 1000 // size + 1,), (pause,)))


# Cases a gateway has got wrong, or that random draws reach seldom: run first, every time.
REGRESSIONS = (
    _alone(replace(OK, interim=(Interim(100), Interim(103, (Field(b"Link", b"</", b">"),))))),
    # The final response 10 ms after a 100: a gateway that took the 100 for the answer pools the
    # connection, and the third request (the same listener) gets the first one's response.
    Batch(
        (
            Script(_pause_after_interim(replace(OK, interim=(Interim(100),)), 0.01), OK),
            Script(OK, OK, 0.002),
            Script(OK, OK, 0.004),
        ),
        client_connections=3,
    ),
    _alone(replace(OK, framing="eof", close=True)),
    _alone(replace(OK, framing="eof", close=True, version=b"1.0")),
    _alone(replace(OK, framing="eof", close=True, body_size=MAX_BODY)),
    _alone(replace(CHUNKED, chunk_ext=True, trailers=(Field(b"X-Trailer-A"),))),
    _alone(replace(OK, status=204, framing="none", body_size=0)),
    _alone(replace(OK, status=304, framing="none", body_size=0)),
    _alone(replace(OK, nominated=True, keep_alive_header=True)),
    _alone(replace(OK, status=500), replace(OK, status=503)),
    # An unsolicited response in the same write; the third request reuses the connection.
    Batch((Script(replace(OK, extra=0.0), OK), Script(OK, OK, 0.004), Script(OK, OK, 0.006))),
    _alone(CutMidStream(replace(OK, body_size=2 * BUFFER), BUFFER + 4096)),
    _alone(CutMidStream(replace(CHUNKED, body_size=2 * BUFFER), BUFFER + 4096)),
    *(_alone(Broken("garbage_status", i, OK)) for i in range(len(GARBAGE_STATUS_LINES))),
    *(
        _alone(Broken(kind, arg, base))
        for kind, arg, base in (
            ("bad_status", 99, OK),
            ("bad_status", 600, OK),
            ("ctl_in_value", 0, OK),
            ("ctl_in_value", ord("\n"), OK),
            ("conflicting_length", 1, OK),
            ("bad_length", 0, OK),
            ("length_and_chunked", 16, CHUNKED),
            ("truncated_body", 500, OK),
            ("truncated_head", 500, OK),
            ("bad_chunk_size", 0, CHUNKED),
            ("too_many_headers", MAX_HEADER_COUNT + 1, OK),
            ("huge_head", MAX_HEADER_BYTES + 1024, OK),
            ("unsolicited_101", 0, OK),
        )
    ),
)


def with_regressions(test: Callable[..., None]) -> Callable[..., None]:
    for batch in reversed(REGRESSIONS):
        test = example(batch=batch)(test)
    return test


@pytest.mark.slow
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=CI,
    database=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
@with_regressions
@given(batch=batches())
def test_the_gateway_passes_on_exactly_what_the_upstream_sent(batch: Batch) -> None:
    run(exchange(batch))
