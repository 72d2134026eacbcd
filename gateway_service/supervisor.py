"""The gateway as a group of processes, one of them in charge: `python -m gateway_service`.

- **The supervisor** (this process) binds the listening sockets, maps the shared board
  (gateway_service/board.py), writes the first backend table, then forks the other processes,
  replaces any that dies, passes signals on, and after a graceful shutdown exits with status 0.
- **Workers** (`WORKERS`, by default the CPUs this process may use: gateway_service/cpus.py)
  serve clients (gateway_service/worker.py). All of them draw from one rotation and see one
  health state, on the board.
- **The control process** runs the active health checks and DNS discovery for the whole gateway,
  once per interval, and writes what they find on the board. It serves no client, so a worker's
  stalled event loop cannot fail a probe and take a healthy service out of rotation. It also
  serves the admin API when `ADMIN_PORT` is set (gateway_service/admin.py; the supervisor binds
  its socket, so a port in use stops the start), and reads `STORAGE_SERVICES_FILE` again when
  the supervisor passes it a SIGHUP.

The supervisor never runs an event loop or a thread, so it can fork at any moment without a
child inheriting a half-held lock or another loop's state. It waits for signals with
`sigtimedwait` (they stay blocked in between, so none is lost between two waits).

How connections reach workers (docs/performance.md has the measurements): each worker has a
listening socket of its own, bound with `SO_REUSEPORT`, and the kernel spreads connections among
them by hashing their addresses. The supervisor keeps every socket open, so when a worker dies
the connections queued on its socket wait for its replacement instead of being reset.
"""

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass

import uvloop

from gateway_service import upstream
from gateway_service.admin import AdminAPI, Roster
from gateway_service.app import Gateway
from gateway_service.board import Board
from gateway_service.connections import (
    SWEEP_INTERVAL_SECONDS,
    ConnectionGuard,
    SharedCap,
    connection_cap,
    raise_nofile_limit,
)
from gateway_service.http_server import ServerContext
from gateway_service.logs import EventLog
from gateway_service.settings import GatewaySettings
from gateway_service.worker import BACKLOG, Periodic, serve_forever

# uvicorn's exit status for a server that could not start; kept for scripts that test for it.
STARTUP_FAILURE = 3
# The status of a supervisor that gave up because workers keep dying as they start.
GAVE_UP = 1
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})
HANDLED = STOP_SIGNALS | {signal.SIGCHLD, signal.SIGHUP}
# A child that dies sooner than this after it started has failed to start; after this many
# such deaths in a row the supervisor stops (a bad deployment must not spin for ever).
QUICK_DEATH_SECONDS = 2.0
MAX_QUICK_DEATHS = 5
# A child dying again soon waits this long times 2^(deaths in a row) before it is replaced.
RESTART_BACKOFF_SECONDS = 0.1
# After SHUTDOWN_TIMEOUT, how long workers get to exit before they are killed.
KILL_GRACE_SECONDS = 5.0
# Admin API connections open at once (an operator's tool, not a crowd).
ADMIN_MAX_CONNECTIONS = 64
PR_SET_PDEATHSIG = 1

WORKER = "worker"
CONTROL = "control"


@dataclass
class Child:
    role: str
    index: int
    pid: int
    started: float
    quick_deaths: int = 0


# Each client connection's kernel receive buffer (accepted sockets inherit it from the
# listening one). Requests are small and bodies at most 1 MiB, so a fixed buffer costs nothing;
# left to autotuning, one client that never stops sending (an endless head) could make the
# kernel hold megabytes for it before the gateway refuses it.
RECEIVE_BUFFER_BYTES = 128 * 1024
REUSEPORT = "reuseport"
SHARED = "shared"
LISTEN_MODES = (REUSEPORT, SHARED)


def listening_sockets(host: str, port: int, count: int, mode: str) -> list[socket.socket]:
    """The listening sockets for `count` workers on `host:port`: one each with SO_REUSEPORT, or
    one for all (`SHARED`); OSError says why not. Port 0 picks one port for all of them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for _ in range(count if mode == REUSEPORT else 1):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
            if mode == REUSEPORT:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.setblocking(False)
            sock.listen(4096)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _die_with_parent(parent: int) -> None:
    """Ask the kernel for SIGTERM when the supervisor dies, so no worker outlives it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        os._exit(0)  # it died before we asked


class Supervisor:
    def __init__(
        self,
        settings: GatewaySettings,
        host: str,
        port: int,
        workers: int,
        log: EventLog,
        listen: str = REUSEPORT,
    ) -> None:
        self.settings = settings
        self.host = host
        self.port = port
        self.workers = workers
        self.log = log
        self.listen = listen
        self.children: dict[int, Child] = {}
        self.restarts: list[tuple[float, Child]] = []  # (when, the child that died)
        self.stopping = False
        self.admin_socket: socket.socket | None = None

    def run(self) -> int:
        """Start everything and supervise until told to stop; the exit status."""
        settings = self.settings
        nofile = raise_nofile_limit()
        # Each worker's own cap comes from its open-file limit; MAX_CONNECTIONS caps them all
        # together, counted on the board.
        per_worker = connection_cap(
            nofile, len(settings.storage_services), upstream.MAX_IDLE_PER_BACKEND
        )
        self.cap = per_worker
        try:
            self.sockets = listening_sockets(self.host, self.port, self.workers, self.listen)
        except OSError as error:
            print(
                f"gateway_service: cannot listen on {self.host}:{self.port}: "
                f"{error.strerror or error}",
                file=sys.stderr,
            )
            return STARTUP_FAILURE
        self.port = self.sockets[0].getsockname()[1]
        if settings.admin_port:
            try:
                [self.admin_socket] = listening_sockets(
                    settings.admin_host, settings.admin_port, 1, SHARED
                )
            except OSError as error:
                print(
                    f"gateway_service: cannot listen on ADMIN_HOST:ADMIN_PORT "
                    f"{settings.admin_host}:{settings.admin_port}: {error.strerror or error}",
                    file=sys.stderr,
                )
                return STARTUP_FAILURE
        # A drain must know that no pick still walks the rotation it replaced: picks take the
        # lock then, even with one worker.
        self.board = Board(self.workers, locked=bool(settings.admin_port))
        # Built here, before any fork: it resolves the names and writes the first table, which
        # every worker reads as it starts. Its process runs only if it has something to do.
        self.control = Gateway(settings, board=self.board, runs_checks=True, log=self.log)
        self.control.publish(self.control.discovery.resolve_now())
        self.log.event(
            "limits",
            nofile=nofile,
            max_connections=settings.max_connections or per_worker * self.workers,
            max_connections_per_worker=per_worker,
            max_connections_from="MAX_CONNECTIONS" if settings.max_connections else "nofile",
            client_timeout=settings.client_timeout,
        )
        self.log.event(
            "supervisor_started",
            pid=os.getpid(),
            workers=self.workers,
            listen=self.listen,
            host=self.host,
            port=self.port,
            storage_services=[storage.url for storage in settings.storage_services],
        )
        signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
        if self._control_needed():
            self._spawn(CONTROL, 0)
        for index in range(self.workers):
            self._spawn(WORKER, index)
        return self._supervise()

    # The loop

    def _supervise(self) -> int:
        while True:
            timeout = self._restart_due()
            info = signal.sigtimedwait(HANDLED, timeout)
            if info is None:
                continue
            signum = info.si_signo
            if signum == signal.SIGCHLD:
                if self._reap() == GAVE_UP:
                    self._stop(signal.SIGTERM)
                    return GAVE_UP
            elif signum in STOP_SIGNALS:
                return self._stop(signum)
            elif signum == signal.SIGHUP:
                self._reload()

    def _control_needed(self) -> bool:
        settings = self.settings
        return bool(
            settings.health_interval > 0
            or settings.discovery_interval > 0
            or settings.admin_port
            or settings.storage_services_file
        )

    def _reload(self) -> None:
        """SIGHUP: the control process reads STORAGE_SERVICES_FILE again."""
        if not self.settings.storage_services_file:
            self.log.event("sighup_ignored", detail="no STORAGE_SERVICES_FILE to read again")
            return
        control = [child for child in self.children.values() if child.role == CONTROL]
        self.log.event("sighup", detail=f"reading {self.settings.storage_services_file} again")
        self._signal(control, signal.SIGHUP)

    def _restart_due(self) -> float:
        """Replace the children whose time has come; seconds until the next one (or 1)."""
        now = time.monotonic()
        due = [(when, child) for when, child in self.restarts if when <= now]
        self.restarts = [(when, child) for when, child in self.restarts if when > now]
        for _, child in due:
            self._spawn(child.role, child.index, child.quick_deaths)
        if self.restarts:
            return max(0.0, min(when for when, _ in self.restarts) - now)
        return 1.0

    def _reap(self) -> int:
        """Collect every child that exited; schedule its replacement. GAVE_UP when one keeps
        dying as it starts."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return 0
            if pid == 0:
                return 0
            child = self.children.pop(pid, None)
            if child is None or self.stopping:
                continue
            lived = time.monotonic() - child.started
            quick = lived < QUICK_DEATH_SECONDS
            deaths = child.quick_deaths + 1 if quick else 0
            self.log.event(
                f"{child.role}_exited",
                level="error",
                **{child.role: child.index},
                pid=pid,
                how=_how(status),
                after_s=round(lived, 3),
                replaced=deaths < MAX_QUICK_DEATHS,
            )
            if deaths >= MAX_QUICK_DEATHS:
                self.log.event(
                    "gave_up",
                    level="error",
                    detail=f"a {child.role} died {deaths} times in a row within "
                    f"{QUICK_DEATH_SECONDS:g} s of starting; see the lines above",
                )
                return GAVE_UP
            child.quick_deaths = deaths
            delay = RESTART_BACKOFF_SECONDS * (2 ** (deaths - 1)) if deaths else 0.0
            self.restarts.append((time.monotonic() + delay, child))
            self._restart_due()

    def _stop(self, signum: int) -> int:
        """Graceful shutdown: workers finish what is in flight, then the control process goes."""
        self.stopping = True
        self.log.event("stopping", signal=signal.Signals(signum).name)
        for sock in self.sockets:
            sock.close()  # the kernel refuses new connections once the workers close theirs too
        workers = [child for child in self.children.values() if child.role == WORKER]
        self._signal(workers, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.shutdown_timeout + KILL_GRACE_SECONDS
        if not self._wait(WORKER, deadline):
            left = [child for child in self.children.values() if child.role == WORKER]
            self.log.event("workers_killed", level="error", pids=[c.pid for c in left])
            self._signal(left, signal.SIGKILL)
            self._wait(WORKER, time.monotonic() + KILL_GRACE_SECONDS)
        control = list(self.children.values())
        self._signal(control, signal.SIGTERM)
        if not self._wait(CONTROL, time.monotonic() + KILL_GRACE_SECONDS):
            self._signal(list(self.children.values()), signal.SIGKILL)
            self._wait(CONTROL, time.monotonic() + KILL_GRACE_SECONDS)
        self.log.event("stopped")
        self.log.flush()
        return 0

    def _signal(self, children: list[Child], signum: int) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signum)

    def _wait(self, role: str, deadline: float) -> bool:
        """Reap until no child of `role` is left; False when `deadline` came first. A second
        stop signal kills the workers at once."""
        while any(child.role == role for child in self.children.values()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            info = signal.sigtimedwait(HANDLED, min(remaining, 1.0))
            if info is not None and info.si_signo in STOP_SIGNALS:
                self._signal(list(self.children.values()), signal.SIGKILL)
            self._reap()
        return True

    # The children

    def _spawn(self, role: str, index: int, quick_deaths: int = 0) -> None:
        self.log.flush()  # nothing pending may be written twice, by parent and child
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            status = 70  # EX_SOFTWARE, unless the child says otherwise
            try:
                # A SIGHUP is the supervisor's to pass on (to the control process, which sets its
                # own handler): it must not kill a child, as its default action would.
                signal.signal(signal.SIGHUP, signal.SIG_IGN)
                signal.pthread_sigmask(signal.SIG_SETMASK, set())
                _die_with_parent(parent)
                status = self._worker(index) if role == WORKER else self._control()
            except BaseException:
                traceback.print_exc()
            finally:
                with contextlib.suppress(BaseException):
                    sys.stderr.flush()
                os._exit(status)
        self.children[pid] = Child(role, index, pid, time.monotonic(), quick_deaths)

    def _worker(self, index: int) -> int:
        settings = self.settings
        self.board.attach(index)
        mine = self.sockets[index % len(self.sockets)]
        for sock in self.sockets:
            if sock is not mine:
                sock.close()
        if self.admin_socket is not None:
            self.admin_socket.close()
        log = EventLog(fmt=settings.log_format)
        gateway = Gateway(settings, board=self.board, runs_checks=False, log=log)
        stats = gateway.stats
        # Without MAX_CONNECTIONS no cap for them all, but the count still feeds /metrics.
        limit = settings.max_connections or sys.maxsize
        shared = SharedCap(limit, stats.open_connections, stats.publish_open)
        guard = ConnectionGuard(
            client_timeout=settings.client_timeout,
            max_connections=self.cap,
            log=log,
            shared=shared,
        )
        uvloop.run(
            serve_forever(
                gateway,
                [mine],
                guard,
                log,
                access_log=settings.access_log,
                shutdown_timeout=settings.shutdown_timeout,
                lifespan=gateway.running(),
                on_serving=lambda: log.event("worker_serving", worker=index, pid=os.getpid()),
                on_connection=gateway.stats.count_connection,
            )
        )
        log.flush()
        return 0

    def _control(self) -> int:
        for sock in self.sockets:
            sock.close()
        self.board.attach_control()
        uvloop.run(self._control_loop())
        self.control.log.flush()
        return 0

    async def _control_loop(self) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        settings = self.settings
        roster = Roster(self.control)
        roster.restore()
        tasks: set[asyncio.Task[None]] = set()
        path = settings.storage_services_file
        if path:

            def reload() -> None:
                task = loop.create_task(roster.reload(path))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

            loop.add_signal_handler(signal.SIGHUP, reload)
        async with self.control.running():
            if self.admin_socket is None:
                await stop.wait()
            else:
                await self._serve_admin(roster, self.admin_socket, stop)

    async def _serve_admin(self, roster: Roster, sock: socket.socket, stop: asyncio.Event) -> None:
        settings = self.settings
        token = settings.admin_token
        assert token is not None  # the settings refuse ADMIN_PORT without one
        log = self.control.log
        # A drain waits for attempts already on the backend; the proxy ends each within these.
        within = settings.connect_timeout + settings.read_timeout + 1.0
        app = AdminAPI(roster, token.get_secret_value(), drain_within=within)
        guard = ConnectionGuard(
            client_timeout=settings.client_timeout, max_connections=ADMIN_MAX_CONNECTIONS, log=log
        )
        ctx = ServerContext(app, guard, log, access_log=False)
        server = await asyncio.get_running_loop().create_server(
            ctx.connection, sock=sock, backlog=BACKLOG
        )
        sweeper = Periodic(SWEEP_INTERVAL_SECONDS, guard.sweep)
        sweeper.start()
        log.event(
            "admin_serving", host=settings.admin_host, port=sock.getsockname()[1], pid=os.getpid()
        )
        try:
            await stop.wait()
        finally:
            sweeper.stop()
            server.close()
            ctx.begin_shutdown()


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.WEXITSTATUS(status)}"
