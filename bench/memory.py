"""Memory with large bodies: each gateway's RSS while clients fetch a big body through it at once.

The storage services cap their body at 1 MiB, so this phase starts its own upstream
(bench/bigbody.py, behind a `BigBodyPool`) and one more instance of each gateway in front of it,
with the same start functions and settings as the measured ones. Per gateway, one after the
other: start it, wait until it answers a small probe through the upstream, read its RSS
(baseline), start `memory_clients` concurrent fetches of `/data` (bench/fetch.py, pinned like
wrk), sample the RSS of the gateway's process tree every 50 ms until they end, keep sampling for
`memory_after_s`, read it once more (after), stop the gateway.
"""

import json
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.fetch import SOCKET_TIMEOUT_S
from bench.processes import BenchError, Children, children, http_get, pinned, wait_until
from bench.procstat import descendants, rss_bytes, status_bytes
from bench.settings import BenchSettings
from bench.targets import BENCH_ROOT, START_TIMEOUT_S, BigBodyPool, Target, start_target

SAMPLE_INTERVAL_S = 0.05
# How often the process tree is walked again (an nginx worker could be replaced).
TREE_RESCAN_S = 1.0
# The bench's readiness probe: bench/bigbody.py answers it with a small body.
PROBE_PATH = "/data?probe=1"
# nginx's warning when a response outgrows its memory buffers (proxy_max_temp_file_size: 1 GiB).
NGINX_TEMP_FILE = "buffered to a temporary file"


class RssSampler:
    """The summed VmRSS of a process and its descendants, from /proc."""

    def __init__(
        self,
        root_pid: int,
        proc: Path = Path("/proc"),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._root = root_pid
        self._proc = proc
        self._clock = clock
        self._pids: list[int] = []
        self._scanned_at: float | None = None
        self.count = 0

    def pids(self) -> list[int]:
        now = self._clock()
        if self._scanned_at is None or now - self._scanned_at >= TREE_RESCAN_S:
            self._pids = [self._root, *descendants(self._root, self._proc)]
            self._scanned_at = now
        return self._pids

    def sample(self) -> int:
        self.count += 1
        return rss_bytes(self.pids(), self._proc)

    def high_water_mark(self) -> int:
        """The kernel's peak RSS of each process since it started (VmHWM), summed.

        Catches a peak between two samples; it is an upper bound for the tree's peak (each process
        peaks on its own time), exact for a single process.
        """
        return status_bytes(self.pids(), "VmHWM", self._proc)


@dataclass(frozen=True)
class ClientResult:
    """What one client got (bench/fetch.py's result)."""

    status: int | None
    content_length: int | None
    bytes: int
    seconds: float
    error: str | None

    def complete(self, body_bytes: int) -> bool:
        return self.status == 200 and self.error is None and self.bytes == body_bytes


@dataclass(frozen=True)
class MemoryRun:
    """One gateway's RSS (bytes, summed over its processes) around the concurrent fetches."""

    clients: int
    body_bytes: int
    baseline_rss: int
    peak_rss: int
    after_rss: int
    # VmHWM summed over the processes, before the fetches and at the end.
    hwm_before: int
    hwm_after: int
    after_s: float
    fetch_s: float
    samples: int
    results: list[ClientResult]
    # nginx only: how often its error log says a response went to a temp file (None: not read).
    temp_file_warnings: int | None = None

    @property
    def complete(self) -> int:
        return sum(r.complete(self.body_bytes) for r in self.results)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "complete": self.complete}


def client_results(raw: list[dict[str, Any]]) -> list[ClientResult]:
    return [
        ClientResult(
            status=r.get("status"),
            content_length=r.get("content_length"),
            bytes=int(r.get("bytes", 0)),
            seconds=float(r.get("seconds", 0.0)),
            error=r.get("error"),
        )
        for r in raw
    ]


def count_in_log(log_path: Path | None, text: str) -> int | None:
    """Lines of a log that contain `text`; None when there is no log to read (devnull)."""
    if log_path is None or not log_path.exists():
        return None
    return sum(text in line for line in log_path.read_text(errors="replace").splitlines())


def _fetch_command(target: Target, settings: BenchSettings, out: Path) -> list[str]:
    command = [
        sys.executable, "-m", "bench.fetch",
        "--port", str(target.port),
        "--path", "/data",
        "--clients", str(settings.memory_clients),
        "--deadline-s", str(settings.memory_deadline_s),
        "--out", str(out),
    ]  # fmt: skip
    return pinned(command, settings.client_cpus)


def measure_one(target: Target, kids: Children, settings: BenchSettings) -> MemoryRun:
    """RSS before, during (peak) and after `memory_clients` concurrent fetches through `target`."""
    sampler = RssSampler(target.root.pid)
    baseline = sampler.sample()
    hwm_before = sampler.high_water_mark()
    out = kids.log_dir / f"fetch-{target.name}.json"
    # The clients stop at their deadline; this only catches a client that hangs past it.
    hard_stop = time.monotonic() + settings.memory_deadline_s + SOCKET_TIMEOUT_S + 15
    started = time.monotonic()
    client = kids.start(
        f"fetch-{target.name}", _fetch_command(target, settings, out), cwd=BENCH_ROOT
    )
    peak = baseline
    while client.alive():
        peak = max(peak, sampler.sample())
        if time.monotonic() > hard_stop:
            kids.stop(client, signal.SIGKILL)
            raise BenchError(f"the memory clients of {target.name} ran past their deadline")
        time.sleep(SAMPLE_INTERVAL_S)
    fetch_s = time.monotonic() - started
    kids.stop(client)
    if client.popen.returncode != 0 or not out.exists():
        raise BenchError(f"bench.fetch failed ({client.popen.returncode}): {client.tail()}")
    until = time.monotonic() + settings.memory_after_s
    while time.monotonic() < until:
        peak = max(peak, sampler.sample())
        time.sleep(SAMPLE_INTERVAL_S)
    after = sampler.sample()
    return MemoryRun(
        clients=settings.memory_clients,
        body_bytes=settings.memory_body_bytes,
        baseline_rss=baseline,
        peak_rss=max(peak, after),
        after_rss=after,
        hwm_before=hwm_before,
        hwm_after=sampler.high_water_mark(),
        after_s=settings.memory_after_s,
        fetch_s=round(fetch_s, 2),
        samples=sampler.count,
        results=client_results(json.loads(out.read_text())),
        temp_file_warnings=(
            count_in_log(target.root.log_path, NGINX_TEMP_FILE) if target.name == "nginx" else None
        ),
    )


def _wait_probe(target: Target) -> None:
    def ready() -> bool:
        return http_get(target.port, PROBE_PATH)[0] == 200

    wait_until(
        f"{target.name} serving from the big-body server", ready, START_TIMEOUT_S, target.root
    )


def measure_memory(
    names: list[str],
    settings: BenchSettings,
    source_dir: Path,
    nginx_dir: Path,
    work_dir: Path,
    progress: Callable[[str], None],
) -> dict[str, dict[str, Any]]:
    """The memory phase for each named gateway, one at a time; the results by gateway name."""
    work_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    with children(work_dir) as kids:
        upstream = BigBodyPool(kids, settings)
        upstream.start_missing()
        for name in names:
            target = start_target(name, kids, upstream, settings, source_dir, nginx_dir)
            try:
                _wait_probe(target)
                run = measure_one(target, kids, settings)
            finally:
                kids.stop(target.root)
            results[name] = run.as_dict()
            progress(
                f"memory {name}: RSS {run.baseline_rss / 2**20:.1f} -> peak "
                f"{run.peak_rss / 2**20:.1f} -> {run.after_rss / 2**20:.1f} MiB; "
                f"{run.complete}/{run.clients} full bodies"
            )
    return results
