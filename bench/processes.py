"""Child processes the bench starts, and the guarantee that every one of them is stopped."""

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from toolkit import waiting


class BenchError(RuntimeError):
    """A failure worth one line to the user (a process did not start, a tool is missing)."""


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(command: list[str], cpus: str | None) -> list[str]:
    """`command` run on the given CPUs (taskset execs, so the pid stays the command's own)."""
    return ["taskset", "-c", cpus, *command] if cpus else command


@dataclass
class Child:
    """One started process, with the file its output goes to."""

    name: str
    popen: "subprocess.Popen[bytes]"
    log_path: Path | None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 5) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Children:
    """Every process the bench started; `stop_all` ends each one by its own pid."""

    log_dir: Path
    running: list[Child] = field(default_factory=list)

    def start(
        self,
        name: str,
        command: list[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        output: Path | None = None,
    ) -> Child:
        log_path = output or self.log_dir / f"{name}.log"
        sink: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - the child owns it until it exits
        try:
            popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                # Its own process group: a Ctrl-C reaches the bench, which then stops it in order.
                start_new_session=True,
            )
        except FileNotFoundError:
            raise BenchError(f"cannot start {name}: {command[0]} not found") from None
        finally:
            sink.close()
        child = Child(name, popen, None if str(log_path) == os.devnull else log_path)
        self.running.append(child)
        return child

    def stop(self, child: Child, sig: int = signal.SIGTERM, grace_s: float = 5.0) -> None:
        """Signal one child and wait for it; SIGKILL if it outlives the grace period."""
        if child.alive():
            with contextlib.suppress(ProcessLookupError):
                child.popen.send_signal(sig)
            try:
                child.popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                child.popen.kill()
                child.popen.wait()
        if child in self.running:
            self.running.remove(child)

    def stop_all(self) -> None:
        for child in reversed(list(self.running)):
            self.stop(child)


@contextlib.contextmanager
def children(log_dir: Path) -> Iterator[Children]:
    """Stops everything started inside, on success, error, Ctrl-C or SIGTERM."""
    group = Children(log_dir)

    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    # A shell starts background jobs with SIGINT ignored; the bench stays interruptible anyway.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield group
    finally:
        # A second Ctrl-C during clean-up must not leave processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            group.stop_all()
        finally:
            signal.signal(signal.SIGINT, previous_int)
            signal.signal(signal.SIGTERM, previous)


def http_get(port: int, path: str, timeout_s: float = 1.0) -> tuple[int, bytes]:
    """GET http://127.0.0.1:PORT/PATH; (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_until(
    what: str, ready: Callable[[], bool], timeout_s: float, child: Child | None = None
) -> float:
    """Poll `ready` until it holds; the seconds it took. Fails early if `child` exits."""

    def probe() -> bool:
        if child is not None and not child.alive():
            raise BenchError(f"{child.name} exited ({child.popen.returncode}): {child.tail()}")
        return ready()

    start = time.monotonic()
    try:
        # Refused or reset connections only mean "not yet" while a server starts.
        waiting.wait_until(
            probe, timeout=timeout_s, what=what, retry_on=(OSError, http.client.HTTPException)
        )
    except waiting.ConditionTimeout:
        tail = f": {child.tail()}" if child is not None else ""
        raise BenchError(f"{what} not ready after {timeout_s:.0f}s{tail}") from None
    return time.monotonic() - start
