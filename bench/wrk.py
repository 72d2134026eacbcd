"""Running wrk (bounded in time) with one of the bench's Lua scripts."""

import signal
import subprocess
from pathlib import Path

from bench.processes import BenchError, pinned

LUA_DIR = Path(__file__).parent / "lua"
SUMMARY_SCRIPT = LUA_DIR / "summary.lua"
STATUSES_SCRIPT = LUA_DIR / "statuses.lua"
# A request slower than this counts as a wrk timeout error, not a latency sample.
REQUEST_TIMEOUT_S = 5


def wrk_command(
    url: str, connections: int, threads: int, duration_s: int, script: Path, cpus: str | None
) -> list[str]:
    command = [
        "wrk",
        f"--threads={min(threads, connections)}",
        f"--connections={connections}",
        f"--duration={duration_s}s",
        f"--timeout={REQUEST_TIMEOUT_S}s",
        f"--script={script}",
        url,
    ]
    return pinned(command, cpus)


def run_wrk(command: list[str], duration_s: int) -> str:
    """Run wrk to its end; its stdout."""
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=duration_s + 30, check=False
        )
    except FileNotFoundError:
        raise BenchError("wrk not found (Debian: apt-get install wrk)") from None
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk ran past its {duration_s}s duration: {' '.join(command)}") from None
    if done.returncode != 0:
        raise BenchError(
            f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
        )
    return done.stdout


class BackgroundWrk:
    """wrk running while the bench breaks things; stopped early with SIGINT (wrk then reports)."""

    def __init__(self, command: list[str], max_duration_s: int) -> None:
        self._max = max_duration_s
        try:
            self._popen = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        except FileNotFoundError:
            raise BenchError("wrk not found (Debian: apt-get install wrk)") from None

    def finish(self, interrupt: bool) -> str:
        if interrupt and self._popen.poll() is None:
            self._popen.send_signal(signal.SIGINT)
        try:
            out, err = self._popen.communicate(timeout=self._max + 30)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.communicate()
            raise BenchError("wrk did not stop") from None
        if self._popen.returncode != 0:
            raise BenchError(f"wrk failed ({self._popen.returncode}): {err.strip()}")
        return out

    def kill(self) -> None:
        if self._popen.poll() is None:
            self._popen.kill()
            self._popen.wait()
