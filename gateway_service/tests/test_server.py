"""The gateway's server: the request-head deadline, the connection cap, the open-file limit, and
`python -m gateway_service`, from unit tests with a fake clock up to a slowloris attack on a
gateway limited to 1,024 open files.
"""

import asyncio
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from gateway_service import __version__, upstream
from gateway_service.app import create_app
from gateway_service.logs import EventLog
from gateway_service.server import (
    MIN_CONNECTIONS,
    RESERVE_FDS,
    ConnectionGuard,
    GatewayServer,
    GuardedHttpToolsProtocol,
    HeadWithBody,
    build_server,
    connection_cap,
    protocol_class,
    raise_nofile_limit,
)
from gateway_service.settings import load_settings
from gateway_service.tests.conftest import LogSink
from gateway_service.tests.fakes import FakeClock, eventually, serving

ROOT = Path(__file__).resolve().parents[2]
STORAGE = "http://storage1:8000,http://storage2:8000,http://storage3:8000"


def events(text: str, name: str) -> list[dict[str, object]]:
    lines = (json.loads(line) for line in text.splitlines() if line.startswith("{"))
    return [line for line in lines if line["event"] == name]


# The cap formula ---------------------------------------------------------------------------


class TestConnectionCap:
    def test_each_client_may_hold_an_upstream_connection_besides_idle_pools_and_a_reserve(
        self,
    ) -> None:
        assert connection_cap(65536, backends=3, idle_per_backend=32) == (65536 - 64 - 96) // 2
        assert connection_cap(1024, backends=1, idle_per_backend=256) == (1024 - 64 - 256) // 2

    @pytest.mark.parametrize("nofile", [256, 1024, 4096, 65536, 1 << 20])
    @pytest.mark.parametrize(("backends", "idle"), [(1, 32), (3, 32), (3, 256), (10, 32)])
    def test_every_descriptor_a_full_gateway_may_hold_fits_the_limit(
        self, nofile: int, backends: int, idle: int
    ) -> None:
        cap = connection_cap(nofile, backends, idle)
        if cap > MIN_CONNECTIONS:
            assert 2 * cap + backends * idle + RESERVE_FDS <= nofile

    def test_a_tiny_limit_still_leaves_a_few_connections(self) -> None:
        assert connection_cap(100, backends=3, idle_per_backend=32) == MIN_CONNECTIONS


# The guard, with a fake clock ----------------------------------------------------------------


class FakeConnection:
    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def __repr__(self) -> str:
        return self.name


def guard_for(
    max_connections: int = 100, client_timeout: float = 10.0
) -> tuple[ConnectionGuard, FakeClock, LogSink]:
    clock, logs = FakeClock(), LogSink()
    guard = ConnectionGuard(
        client_timeout=client_timeout,
        max_connections=max_connections,
        log=EventLog(logs, fmt="json"),  # type: ignore[arg-type]
        clock=clock,
    )
    return guard, clock, logs


def head_complete(guard: ConnectionGuard, connection: FakeConnection) -> None:
    """What the protocol does when a request head is complete."""
    guard.waiting.pop(connection, None)


def waiting_for_head(guard: ConnectionGuard, connection: FakeConnection) -> None:
    """What the protocol does when a response finished and the connection stays open."""
    guard.waiting[connection] = guard.clock()


def admitted(guard: ConnectionGuard, *names: str) -> list[FakeConnection]:
    connections = [FakeConnection(name) for name in names]
    for connection in connections:
        assert guard.admit(connection)
    return connections


class TestDeadline:
    def test_a_head_late_by_the_deadline_is_closed_at_the_next_sweep(self) -> None:
        guard, clock, _ = guard_for(client_timeout=10)
        [early] = admitted(guard, "early")
        clock.advance(5)
        [later] = admitted(guard, "later")
        clock.advance(4.9)
        assert guard.sweep() == 0
        clock.advance(0.1)
        assert guard.sweep() == 1
        assert (early.closed, later.closed) == (True, False)
        assert early not in guard.open

    def test_a_request_being_served_is_never_late_and_its_successor_starts_a_new_deadline(
        self,
    ) -> None:
        guard, clock, _ = guard_for(client_timeout=10)
        [busy] = admitted(guard, "busy")
        head_complete(guard, busy)
        clock.advance(1000)
        assert guard.sweep() == 0
        waiting_for_head(guard, busy)
        clock.advance(9.9)
        assert guard.sweep() == 0
        clock.advance(0.1)
        assert guard.sweep() == 1
        assert busy.closed

    def test_a_restamped_connection_moves_behind_the_ones_waiting_longer(self) -> None:
        guard, clock, _ = guard_for(client_timeout=10)
        first, second = admitted(guard, "first", "second")
        head_complete(guard, first)
        clock.advance(3)
        waiting_for_head(guard, first)
        clock.advance(7)
        assert guard.sweep() == 1
        assert (first.closed, second.closed) == (False, True)

    def test_a_connection_closed_by_the_client_is_forgotten(self) -> None:
        guard, clock, _ = guard_for(client_timeout=10)
        [gone] = admitted(guard, "gone")
        guard.forget(gone)
        clock.advance(60)
        assert guard.sweep() == 0
        assert not gone.closed
        assert guard.open == set()


class TestCap:
    def test_at_the_cap_the_connection_waiting_longest_for_a_head_makes_room(self) -> None:
        guard, clock, _ = guard_for(max_connections=3)
        busy, idle_1, idle_2 = admitted(guard, "busy", "idle_1", "idle_2")
        head_complete(guard, busy)
        clock.advance(1)
        [new] = admitted(guard, "new")
        assert [c.closed for c in (busy, idle_1, idle_2, new)] == [False, True, False, False]
        assert guard.open == {busy, idle_2, new}

    def test_at_the_cap_with_every_connection_busy_the_new_one_is_refused(self) -> None:
        guard, _, _ = guard_for(max_connections=2)
        connections = admitted(guard, "a", "b")
        for connection in connections:
            head_complete(guard, connection)
        refused = FakeConnection("refused")
        assert not guard.admit(refused)
        assert guard.open == set(connections)
        assert not any(c.closed for c in connections)
        # The refused connection's loss is reported later; it must not disturb the count.
        guard.forget(refused)
        assert guard.open == set(connections)

    def test_the_cap_is_logged_once_until_the_count_falls_to_90_percent(self) -> None:
        guard, _, logs = guard_for(max_connections=20)

        def client_closes(count: int) -> None:
            for _ in range(count):
                guard.forget(next(iter(guard.open)))

        admitted(guard, *(f"c{i}" for i in range(20)))
        assert events(logs.text, "connection_limit") == []
        admitted(guard, "over_1", "over_2", "over_3")
        [line] = events(logs.text, "connection_limit")
        assert (line["level"], line["max_connections"]) == ("warning", 20)
        client_closes(1)  # 19 open: above 90 %
        admitted(guard, "refill", "over_4")
        assert len(events(logs.text, "connection_limit")) == 1
        client_closes(2)  # 18 open: 90 %
        admitted(guard, "refill_1", "refill_2")
        assert len(events(logs.text, "connection_limit")) == 1
        admitted(guard, "over_5")
        assert len(events(logs.text, "connection_limit")) == 2


class TestBuildServer:
    def test_the_cap_follows_the_open_file_limit_unless_set(self) -> None:
        logs = LogSink()
        gateway = create_app(
            load_settings(storage_services=STORAGE, client_timeout=3),
            log=EventLog(logs, fmt="json"),  # type: ignore[arg-type]
        )
        server = build_server(gateway, "127.0.0.1", 0)
        nofile = raise_nofile_limit()
        expected = connection_cap(nofile, 3, upstream.MAX_IDLE_PER_BACKEND)
        assert server.guard.max_connections == expected
        assert server.guard.client_timeout == 3
        [line] = events(logs.text, "limits")
        assert (line["nofile"], line["max_connections"]) == (nofile, expected)
        config = server.config
        assert isinstance(config.http, type)
        assert issubclass(config.http, GuardedHttpToolsProtocol)
        assert config.http.guard is server.guard
        assert (config.ws, config.access_log, config.lifespan) == ("none", False, "on")
        assert (config.loop, config.timeout_graceful_shutdown) == ("uvloop", 10)

    def test_max_connections_overrides_the_derived_cap(self) -> None:
        gateway = create_app(
            load_settings(storage_services=STORAGE, max_connections=50),
            log=EventLog(LogSink(), fmt="json"),  # type: ignore[arg-type]
        )
        assert build_server(gateway, "127.0.0.1", 0).guard.max_connections == 50


# uvicorn with the guarded protocol, in-process, over real sockets ---------------------------


@dataclass
class Held:
    """An ASGI app that answers `GET /<name>` with `<name>` once the test releases that name."""

    arrived: list[str] = field(default_factory=list)
    gates: dict[str, asyncio.Event] = field(default_factory=dict)

    def gate(self, name: str) -> asyncio.Event:
        return self.gates.setdefault(name, asyncio.Event())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = str(scope["path"]).strip("/")
        self.arrived.append(name)
        await self.gate(name).wait()
        body = name.encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def guarded(app: Held, guard: ConnectionGuard) -> AsyncIterator[int]:
    """uvicorn serving `app` through the guarded protocol; yields the port."""
    config = uvicorn.Config(
        app, http=protocol_class(guard), ws="none", lifespan="off", log_level="warning"
    )
    async with serving(GatewayServer(config, guard)) as port:
        yield port


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def read_body(reader: asyncio.StreamReader) -> bytes:
    """One response's body (every response here has a content-length)."""
    async with asyncio.timeout(5):
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        return await reader.readexactly(length)


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    async with asyncio.timeout(5):
        return await reader.read() == b""


def request(name: str) -> bytes:
    return f"GET /{name} HTTP/1.1\r\nhost: gateway\r\n\r\n".encode()


@pytest.mark.anyio
class TestGuardedProtocol:
    async def test_a_late_head_is_closed_while_a_slow_response_is_not(self) -> None:
        guard, clock, _ = guard_for(client_timeout=10)
        app = Held()
        async with guarded(app, guard) as port:
            slow_reader, slow_writer = await connect(port)
            slow_writer.write(b"GET /never HTTP/1.1\r\nhost: gat")
            await eventually(lambda: len(guard.waiting) == 1)
            clock.advance(5)
            busy_reader, busy_writer = await connect(port)
            busy_writer.write(request("busy"))
            await eventually(lambda: app.arrived == ["busy"])
            clock.advance(5)
            assert guard.sweep() == 1
            assert await closed_by_server(slow_reader)
            clock.advance(100)
            assert guard.sweep() == 0
            app.gate("busy").set()
            assert await read_body(busy_reader) == b"busy"
            # Kept alive: the next head is due within the timeout of that response.
            await eventually(lambda: len(guard.waiting) == 1)
            clock.advance(9.9)
            assert guard.sweep() == 0
            clock.advance(0.1)
            assert guard.sweep() == 1
            assert await closed_by_server(busy_reader)
            for writer in (slow_writer, busy_writer):
                writer.close()

    async def test_pipelined_requests_are_answered_in_order_and_never_counted_late(
        self,
    ) -> None:
        guard, clock, _ = guard_for(client_timeout=10)
        app = Held()
        async with guarded(app, guard) as port:
            reader, writer = await connect(port)
            writer.write(request("first") + request("second") + request("third"))
            await eventually(lambda: app.arrived == ["first"])
            assert guard.waiting == {}
            app.gate("first").set()
            await eventually(lambda: app.arrived == ["first", "second"])
            assert guard.waiting == {}  # the next head had arrived: nothing to wait for
            clock.advance(100)
            assert guard.sweep() == 0
            app.gate("second").set()
            app.gate("third").set()
            assert [await read_body(reader) for _ in range(3)] == [b"first", b"second", b"third"]
            await eventually(lambda: len(guard.waiting) == 1)
            writer.close()

    async def test_at_the_cap_a_head_waiting_connection_makes_room_else_the_new_one_goes(
        self,
    ) -> None:
        guard, clock, _ = guard_for(max_connections=2)
        app = Held()
        async with guarded(app, guard) as port:
            oldest_reader, oldest_writer = await connect(port)
            await eventually(lambda: len(guard.open) == 1)
            clock.advance(1)
            busy_reader, busy_writer = await connect(port)
            busy_writer.write(request("busy"))
            await eventually(lambda: app.arrived == ["busy"])
            new_reader, new_writer = await connect(port)
            assert await closed_by_server(oldest_reader)
            new_writer.write(request("new"))
            await eventually(lambda: app.arrived == ["busy", "new"])
            # Both connections are busy now: a third is refused, and they are not disturbed.
            refused_reader, refused_writer = await connect(port)
            assert await closed_by_server(refused_reader)
            app.gate("busy").set()
            app.gate("new").set()
            assert await read_body(busy_reader) == b"busy"
            assert await read_body(new_reader) == b"new"
            for writer in (oldest_writer, busy_writer, new_writer, refused_writer):
                writer.close()


# `python -m gateway_service` as a process ----------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(what: str, condition: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        time.sleep(0.02)


def status_of(port: int, path: str, timeout: float = 2.0) -> int | None:
    """The status of one GET on a new connection, or None when none came within `timeout`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


@contextmanager
def process(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator["subprocess.Popen[bytes]"]:
    with log.open("ab") as sink:
        child = subprocess.Popen(
            command,
            cwd=ROOT,
            env={"PATH": os.environ.get("PATH", ""), **env},
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        yield child
    finally:
        stop(child)


def stop(child: "subprocess.Popen[bytes]") -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=5)


def gateway_command(port: int) -> list[str]:
    return [sys.executable, "-m", "gateway_service", "--port", str(port)]


def start_serving(child: "subprocess.Popen[bytes]", port: int, log: Path) -> None:
    def healthy() -> bool:
        if child.poll() is not None:
            raise AssertionError(f"exited with {child.returncode}: {log.read_text()[-2000:]}")
        return status_of(port, "/health", timeout=1) == 200

    wait_until(f"serving on {port}", healthy, within=30)


def read_responses(sock: socket.socket, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    """`count` responses (with content-length) read from `sock`, in the order they came."""
    buffer = b""
    responses: list[tuple[int, dict[str, str], bytes]] = []
    while len(responses) < count:
        head_end = buffer.find(b"\r\n\r\n")
        if head_end >= 0:
            lines = buffer[:head_end].decode("latin-1").split("\r\n")
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines[1:])
            }
            end = head_end + 4 + int(headers.get("content-length", "0"))
            if len(buffer) >= end:
                responses.append((int(lines[0].split()[1]), headers, buffer[head_end + 4 : end]))
                buffer = buffer[end:]
                continue
        chunk = sock.recv(65536)
        assert chunk, f"closed after {len(responses)} of {count} responses"
        buffer += chunk
    return responses


def seconds_until_closed(sock: socket.socket, within: float) -> float:
    """How long until the server closed `sock`; fails after `within` seconds."""
    started = time.monotonic()
    sock.settimeout(within)
    try:
        data = sock.recv(1024)
    except TimeoutError:
        raise AssertionError(f"still open after {within} s") from None
    except ConnectionResetError:
        data = b""
    assert data == b"", data
    return time.monotonic() - started


SHORT_TIMEOUT = 0.5
# The sweep runs about once a second: a late head is closed within a second of its deadline.
CLOSE_WITHIN = SHORT_TIMEOUT + 1.5


@pytest.fixture(scope="module")
def short_deadline_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    log = tmp_path_factory.mktemp("gateway") / "gateway.log"
    env = {
        # Nothing listens there; /health does not need a storage service.
        "STORAGE_SERVICES": f"http://127.0.0.1:{free_port()}",
        "HEALTH_INTERVAL": "0",
        "CLIENT_TIMEOUT": str(SHORT_TIMEOUT),
        "LOG_FORMAT": "json",
    }
    with process(gateway_command(port), env, log) as child:
        start_serving(child, port, log)
        yield port


class RecordingTransport:
    """Keeps every write as one item, as the kernel would see each send."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


@pytest.mark.anyio
class TestHeadWithBody:
    async def test_the_head_and_the_first_body_write_go_out_as_one(self) -> None:
        transport = RecordingTransport()
        held = HeadWithBody(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        held.write(b"HEAD")
        held.write(b"body1")
        held.write(b"body2")
        await asyncio.sleep(0)  # the flush scheduled by the head finds nothing left to send
        assert transport.writes == [b"HEADbody1", b"body2"]

    async def test_a_head_without_a_body_in_the_same_step_still_goes_out_at_once(self) -> None:
        transport = RecordingTransport()
        held = HeadWithBody(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        held.write(b"HEAD")
        assert transport.writes == []
        await asyncio.sleep(0)
        assert transport.writes == [b"HEAD"]
        held.write(b"later")
        assert transport.writes == [b"HEAD", b"later"]

    async def test_closing_sends_a_held_head_first(self) -> None:
        transport = RecordingTransport()
        held = HeadWithBody(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        held.write(b"HEAD")
        held.close()
        assert (transport.writes, transport.closed) == ([b"HEAD"], True)

    async def test_a_head_request_gets_its_head_over_real_sockets(self) -> None:
        """A HEAD answer has no body write at all: its head must still go out."""
        log = EventLog(LogSink())  # type: ignore[arg-type]
        guard = ConnectionGuard(client_timeout=5, max_connections=10, log=log)
        app = Held()
        app.gate("head").set()
        async with guarded(app, guard) as port:
            reader, writer = await connect(port)
            writer.write(b"HEAD /head HTTP/1.1\r\nhost: x\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 ")
            writer.close()


class TestStartCommand:
    @staticmethod
    def run(option: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway_service", option],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def test_help(self) -> None:
        result = self.run("--help")
        assert result.returncode == 0
        assert "--host" in result.stdout
        assert "--port" in result.stdout

    def test_version_prints_the_package_version_and_exits_0(self) -> None:
        result = self.run("--version")
        assert result.returncode == 0
        assert result.stdout.strip() == f"python -m gateway_service {__version__}"
        assert re.fullmatch(r"\d+\.\d+\.\d+\S*", __version__)

    @pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs util-linux prlimit")
    def test_the_soft_open_file_limit_is_raised_to_the_hard_one(self) -> None:
        code = "from gateway_service.server import raise_nofile_limit; print(raise_nofile_limit())"
        result = subprocess.run(
            ["prlimit", "--nofile=512:2048", sys.executable, "-c", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert result.stdout.strip() == "2048"

    def test_a_half_sent_head_is_closed_after_the_deadline_while_others_are_served(
        self, short_deadline_gateway: int
    ) -> None:
        port = short_deadline_gateway
        with socket.create_connection(("127.0.0.1", port)) as slow:
            slow.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\n")
            sent = time.monotonic()
            assert status_of(port, "/health") == 200
            seconds_until_closed(slow, within=CLOSE_WITHIN)
            waited = time.monotonic() - sent
        assert SHORT_TIMEOUT - 0.05 <= waited <= CLOSE_WITHIN

    def test_pipelined_requests_are_answered_in_order_then_the_next_head_has_a_deadline(
        self, short_deadline_gateway: int
    ) -> None:
        pipelined = b"".join(
            f"GET /health HTTP/1.1\r\nHost: gateway\r\nX-Request-ID: r{i}\r\n\r\n".encode()
            for i in range(1, 4)
        )
        with socket.create_connection(("127.0.0.1", short_deadline_gateway), timeout=5) as sock:
            sock.sendall(pipelined)
            responses = read_responses(sock, 3)
            assert [(status, headers["x-request-id"]) for status, headers, _ in responses] == [
                (200, "r1"),
                (200, "r2"),
                (200, "r3"),
            ]
            sock.sendall(b"GET /health HTTP/1.1\r\n")
            assert seconds_until_closed(sock, within=CLOSE_WITHIN) <= CLOSE_WITHIN


# The attack: slow clients against a gateway limited to 1,024 open files ----------------------

ATTACK_NOFILE = 1024
SLOW_CONNECTIONS = 1500
NORMAL_REQUESTS = 20
NORMAL_REQUEST_TIMEOUT = 3.0
# However the normal requests fare, the test ends: a gateway that serves none fails in this time.
NORMAL_REQUESTS_BUDGET = 10.0


@dataclass
class AttackResult:
    served: int
    failed: list[str]
    closed_by_gateway: int
    gateway_log: str


def limited(command: list[str]) -> list[str]:
    """`command` with soft and hard open-file limits of ATTACK_NOFILE (prlimit execs it)."""
    return ["prlimit", f"--nofile={ATTACK_NOFILE}:{ATTACK_NOFILE}", *command]


def run_attack(gateway: Callable[[int], list[str]], workdir: Path) -> AttackResult:
    """Hold SLOW_CONNECTIONS half-sent heads open against the gateway in front of one real
    storage service, and meanwhile send NORMAL_REQUESTS sequential GET /data."""
    if raise_nofile_limit() < SLOW_CONNECTIONS + 100:
        pytest.skip(f"this test process cannot open {SLOW_CONNECTIONS} sockets")
    storage_port, gateway_port = free_port(), free_port()
    storage_command = [
        sys.executable, "-m", "uvicorn", "storage_service.app:app",
        "--host", "127.0.0.1", "--port", str(storage_port), "--no-access-log",
    ]  # fmt: skip
    gateway_env = {
        "STORAGE_SERVICES": f"http://127.0.0.1:{storage_port}",
        # Far beyond the test's length: only the connection cap can save the normal requests.
        "CLIENT_TIMEOUT": "120",
        "LOG_FORMAT": "json",
    }
    gateway_log = workdir / "gateway.log"
    slow: list[socket.socket] = []
    with (
        process(storage_command, {"INSTANCE_NAME": "storage1"}, workdir / "storage.log") as st,
        process(limited(gateway(gateway_port)), gateway_env, gateway_log) as gw,
    ):
        try:
            start_serving(st, storage_port, workdir / "storage.log")
            start_serving(gw, gateway_port, gateway_log)
            for _ in range(SLOW_CONNECTIONS):
                sock = socket.create_connection(("127.0.0.1", gateway_port), timeout=5)
                slow.append(sock)
                sock.sendall(b"GET /data HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
            served, failed = 0, []
            deadline = time.monotonic() + NORMAL_REQUESTS_BUDGET
            for _ in range(NORMAL_REQUESTS):
                if time.monotonic() > deadline:
                    failed.append("not sent: out of time")
                    continue
                status = status_of(gateway_port, "/data", timeout=NORMAL_REQUEST_TIMEOUT)
                if status == 200:
                    served += 1
                else:
                    failed.append(f"status {status}" if status else "no response")
            closed = sum(_closed_by_peer(sock) for sock in slow)
        finally:
            for sock in slow:
                sock.close()
    return AttackResult(served, failed, closed, gateway_log.read_text())


def _closed_by_peer(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs util-linux prlimit")
def test_slow_clients_holding_every_file_do_not_lock_normal_clients_out(tmp_path: Path) -> None:
    result = run_attack(gateway_command, tmp_path)
    assert (result.served, result.failed) == (NORMAL_REQUESTS, [])
    cap = connection_cap(ATTACK_NOFILE, 1, upstream.MAX_IDLE_PER_BACKEND)
    [limits] = events(result.gateway_log, "limits")
    assert (limits["nofile"], limits["max_connections"]) == (ATTACK_NOFILE, cap)
    [line] = events(result.gateway_log, "connection_limit")
    assert line["max_connections"] == cap
    # Every slow connection beyond the cap made room for a later one by being closed.
    assert result.closed_by_gateway >= SLOW_CONNECTIONS - cap
