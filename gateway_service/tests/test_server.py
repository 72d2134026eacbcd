"""`python -m gateway_service` as a process: the start command, the supervisor and its workers
(one rotation, one health state, graceful shutdown, a worker killed), the deadlines, and a
slowloris attack on a gateway limited to 1,024 open files.
"""

import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway_service import __version__, upstream
from gateway_service.connections import connection_cap, raise_nofile_limit
from gateway_service.tests.fakes import CountingStorage

ROOT = Path(__file__).resolve().parents[2]


def events(text: str, name: str) -> list[dict[str, object]]:
    lines = (json.loads(line) for line in text.splitlines() if line.startswith("{"))
    return [line for line in lines if line["event"] == name]


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


def get(port: int, path: str, timeout: float = 2.0) -> tuple[int | None, bytes]:
    """One GET on a new connection: (status, body), or (None, b"") when none came in time."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.read()
    except OSError:
        return None, b""
    finally:
        connection.close()


def status_of(port: int, path: str, timeout: float = 2.0) -> int | None:
    return get(port, path, timeout)[0]


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
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=5)


def gateway_command(port: int, workers: int = 1) -> list[str]:
    command = [sys.executable, "-m", "gateway_service", "--port", str(port)]
    return [*command, "--workers", str(workers)]


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


class TestStartCommand:
    @staticmethod
    def run(*options: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway_service", *options],
            cwd=ROOT,
            env={"PATH": os.environ.get("PATH", ""), **(env or {})},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def test_help(self) -> None:
        result = self.run("--help")
        assert result.returncode == 0
        for option in ("--host", "--port", "--workers", "--listen"):
            assert option in result.stdout

    def test_version_prints_the_package_version_and_exits_0(self) -> None:
        result = self.run("--version")
        assert result.returncode == 0
        assert result.stdout.strip() == f"python -m gateway_service {__version__}"
        assert re.fullmatch(r"\d+\.\d+\.\d+\S*", __version__)

    @pytest.mark.parametrize("workers", ["0", "65", "two"])
    def test_a_bad_worker_count_is_one_line_and_status_2(self, workers: str) -> None:
        result = self.run("--workers", workers)
        assert result.returncode == 2
        assert "--workers: must be a whole number from 1 to 64" in result.stderr
        assert "Traceback" not in result.stderr

    def test_a_bad_setting_is_one_line_and_status_2(self) -> None:
        result = self.run(env={"STORAGE_SERVICES": "http://a:8000", "WORKERS": "0"})
        assert result.returncode == 2
        assert result.stderr.startswith("gateway_service: invalid settings: WORKERS='0'")
        assert len(result.stderr.splitlines()) == 1

    def test_a_port_in_use_is_one_line_and_status_3(self) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            result = self.run("--port", str(port), env={"STORAGE_SERVICES": "http://127.0.0.1:9"})
        assert result.returncode == 3
        assert result.stderr.startswith(f"gateway_service: cannot listen on 127.0.0.1:{port}:")
        assert "Traceback" not in result.stderr

    def test_an_admin_port_in_use_is_one_line_and_status_3(self) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            env = {"STORAGE_SERVICES": "http://127.0.0.1:9", "ADMIN_TOKEN": secrets.token_hex(8)}
            result = self.run("--port", "0", env={**env, "ADMIN_PORT": str(port)})
        assert result.returncode == 3
        assert result.stderr.startswith(
            f"gateway_service: cannot listen on ADMIN_HOST:ADMIN_PORT 127.0.0.1:{port}:"
        )
        assert len(result.stderr.splitlines()) == 1

    @pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs util-linux prlimit")
    def test_the_soft_open_file_limit_is_raised_to_the_hard_one(self) -> None:
        code = (
            "from gateway_service.connections import raise_nofile_limit; "
            "print(raise_nofile_limit())"
        )
        result = subprocess.run(
            ["prlimit", "--nofile=512:2048", sys.executable, "-c", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert result.stdout.strip() == "2048"


SHORT_TIMEOUT = 0.5
# The sweep runs about once a second: a late request is closed within a second of its deadline.
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
    with process(gateway_command(port, workers=2), env, log) as child:
        start_serving(child, port, log)
        yield port


class TestDeadlines:
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


# The supervisor and its workers ----------------------------------------------------------------


@dataclass
class Running:
    port: int
    child: "subprocess.Popen[bytes]"
    log: Path
    storages: list[CountingStorage]

    def events(self, name: str) -> list[dict[str, object]]:
        return events(self.log.read_text(), name)

    def workers(self) -> dict[int, int]:
        """worker index -> pid of the latest process serving as it."""
        return {int(e["worker"]): int(e["pid"]) for e in self.events("worker_serving")}  # type: ignore[call-overload]


@contextmanager
def gateway(tmp_path: Path, workers: int, **settings: object) -> Iterator[Running]:
    """Our gateway with `workers` workers in front of three CountingStorage services."""
    with ExitStack() as stack:
        storages = [stack.enter_context(CountingStorage(f"storage{i}")) for i in (1, 2, 3)]
        port = free_port()
        log = tmp_path / "gateway.log"
        env = {
            "STORAGE_SERVICES": ",".join(storage.url for storage in storages),
            "LOG_FORMAT": "json",
            **{name.upper(): str(value) for name, value in settings.items()},
        }
        child = stack.enter_context(process(gateway_command(port, workers), env, log))
        start_serving(child, port, log)
        wait_until(
            "every worker serving",
            lambda: len(Running(port, child, log, storages).workers()) == workers,
            30,
        )
        yield Running(port, child, log, storages)


def instance(body: bytes) -> str:
    return str(json.loads(body)["instance"])


@pytest.mark.slow
class TestWorkers:
    def test_four_workers_keep_one_strict_rotation_and_one_set_of_totals(
        self, tmp_path: Path
    ) -> None:
        with gateway(tmp_path, workers=4, health_interval=0) as gw:
            served = [instance(get(gw.port, "/data")[1]) for _ in range(30)]
            assert served == ["storage1", "storage2", "storage3"] * 10
            # Every request was a new connection: they landed on whichever worker the kernel
            # chose, and more than one served.
            metrics = get(gw.port, "/metrics")[1].decode()
            per_worker = re.findall(
                r'gateway_worker_connections_total\{worker="\d+"\} (\S+)', metrics
            )
            assert len(per_worker) == 4
            assert sum(float(count) > 0 for count in per_worker) >= 2
            # Whichever worker answers /status, it speaks for the whole gateway.
            for _ in range(8):
                status = json.loads(get(gw.port, "/status")[1])
                assert [s["requests_served"] for s in status["services"]] == [10, 10, 10]
            assert 'gateway_responses_total{code="200"} 30.0' in metrics

    def test_active_checks_run_once_per_interval_for_the_whole_gateway(
        self, tmp_path: Path
    ) -> None:
        with gateway(tmp_path, workers=4, health_interval=0.5) as gw:
            before = [storage.hits["/health"] for storage in gw.storages]
            time.sleep(3.0)  # the count over a span of time is the figure under test
            probes = [
                storage.hits["/health"] - b for storage, b in zip(gw.storages, before, strict=True)
            ]
        # One prober: about 6 probes each in 3 s, where a prober per worker would make 24.
        assert all(4 <= count <= 8 for count in probes), probes

    def test_a_failure_one_worker_sees_takes_the_service_out_for_every_worker(
        self, tmp_path: Path
    ) -> None:
        with gateway(tmp_path, workers=4, health_interval=0, fail_timeout=60) as gw:
            gw.storages[1].status = 500
            answers = [get(gw.port, "/data") for _ in range(30)]
            assert all(status == 200 for status, _ in answers)
            assert gw.storages[1].hits["/data"] == 1
            served = [instance(body) for _, body in answers]
            assert served.count("storage1") == served.count("storage3") == 15
            [down] = gw.events("backend_down")
            assert str(down["reason"]).startswith("passive: HTTP 500")

    def test_least_request_over_two_workers_sends_a_slow_service_less(self, tmp_path: Path) -> None:
        with gateway(tmp_path, workers=2, health_interval=0, balancing="least_request") as gw:
            gw.storages[1].delay = 0.3
            with ThreadPoolExecutor(max_workers=12) as pool:
                answers = list(pool.map(lambda _: get(gw.port, "/data"), range(60)))
            served = [instance(body) for _, body in answers]
            # Round robin would give it exactly a third (20); every new connection lands on
            # either worker, and each sees the other's attempts in flight.
            assert served.count("storage2") < 15, served
            status = json.loads(get(gw.port, "/status")[1])
            assert [service["in_flight"] for service in status["services"]] == [0, 0, 0]

    def test_a_stalled_worker_does_not_fail_the_health_checks(self, tmp_path: Path) -> None:
        with gateway(
            tmp_path, workers=2, health_interval=0.25, health_timeout=0.25, health_fall=1
        ) as gw:
            stalled = gw.workers()[0]
            os.kill(stalled, signal.SIGSTOP)
            try:
                time.sleep(2.0)  # eight probe intervals with one worker frozen
                answered = [get(gw.port, "/status", timeout=0.5) for _ in range(10)]
            finally:
                os.kill(stalled, signal.SIGCONT)
            statuses = [json.loads(body) for status, body in answered if status == 200]
            assert statuses, "the other worker answered nothing"
            assert all(status["available"] == 3 for status in statuses)
            assert gw.events("backend_down") == []

    def test_sigterm_lets_60_requests_in_flight_finish_then_exits_0(self, tmp_path: Path) -> None:
        with gateway(tmp_path, workers=2, health_interval=0, read_timeout=10) as gw:
            for storage in gw.storages:
                storage.delay = 1.5
            with ThreadPoolExecutor(max_workers=60) as pool:
                futures = [pool.submit(get, gw.port, "/data", 15.0) for _ in range(60)]
                wait_until(
                    "60 requests in flight",
                    lambda: sum(s.in_flight for s in gw.storages) == 60,
                    10,
                )
                gw.child.send_signal(signal.SIGTERM)
                statuses = [future.result()[0] for future in futures]
            assert statuses == [200] * 60
            assert gw.child.wait(timeout=20) == 0
            assert status_of(gw.port, "/health", timeout=1) is None  # nobody listens any more
            assert gw.events("stopped")

    def test_a_killed_worker_is_replaced_within_a_second_under_load(self, tmp_path: Path) -> None:
        with gateway(tmp_path, workers=2, health_interval=0) as gw:
            results: list[int | None] = []
            stop_load = threading.Event()

            def load() -> None:
                while not stop_load.is_set():
                    results.append(get(gw.port, "/data", 5.0)[0])

            threads = [threading.Thread(target=load) for _ in range(4)]
            for thread in threads:
                thread.start()
            wait_until("load running", lambda: len(results) > 50, 10)
            victim = gw.workers()[0]
            killed = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            wait_until("a new worker 0", lambda: gw.workers().get(0, victim) != victim, 5)
            replaced_after = time.monotonic() - killed
            served_before = len(results)
            wait_until("load goes on", lambda: len(results) > served_before + 100, 10)
            stop_load.set()
            for thread in threads:
                thread.join(10)
        [exited] = [e for e in gw.events("worker_exited") if e["pid"] == victim]
        assert exited["how"] == "killed by SIGKILL"
        assert replaced_after < 1.0
        # Only requests in flight on the killed worker can fail: one per client thread at most.
        assert results.count(None) <= len(threads)
        assert all(status in (200, None) for status in results)


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


BROKEN_WORKERS = """
import sys
from gateway_service.logs import EventLog
from gateway_service.settings import load_settings
from gateway_service.supervisor import Supervisor

class Broken(Supervisor):
    def _worker(self, index: int) -> int:
        raise RuntimeError("this worker cannot start")

settings = load_settings(storage_services="http://127.0.0.1:9", health_interval=0,
                         discovery_interval=0)
sys.exit(Broken(settings, "127.0.0.1", 0, 2, EventLog(fmt="json")).run())
"""


def test_workers_that_keep_dying_as_they_start_make_the_supervisor_give_up() -> None:
    """A bad deployment must not spin for ever: after five quick deaths in a row (replaced
    after 0.1, 0.2, 0.4, 0.8 s) the supervisor stops everything and exits 1."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", BROKEN_WORKERS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert time.monotonic() - started < 20
    exits = events(done.stderr, "worker_exited")
    assert len(exits) >= 5
    assert all(e["how"] == "exit status 70" for e in exits)
    [gave_up] = events(done.stderr, "gave_up")
    assert "died 5 times in a row" in str(gave_up["detail"])
    assert "RuntimeError: this worker cannot start" in done.stderr  # the cause, once per death
