"""How connections reach our gateway's workers: one socket each (SO_REUSEPORT) or one shared.

`python -m bench.spread` starts three storage services and our gateway with `--workers N` in each
listen mode (`python -m gateway_service --listen`), and measures, per mode:

1. **new connections**: sequential connections, one request each; how many each worker accepted
   (`gateway_worker_connections_total` on /metrics);
2. **keep-alive load**: wrk with 32 connections; the connections each worker holds, and the share
   of the gateway's CPU time each worker spent;
3. **a worker killed**: clients open a new connection per request while one worker gets SIGKILL;
   the requests that failed, and the slowest one (connections queued to the dead worker wait for
   its replacement, or go to another).

Everything is local on 127.0.0.1 and bounded in time; the figures feed docs/performance.md.
"""

import argparse
import json
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.processes import Children, children, free_port, http_get, wait_until
from bench.procstat import cpu_seconds
from bench.settings import BenchSettings
from bench.targets import StoragePool, gateway_env
from bench.wrk import SUMMARY_SCRIPT, run_wrk, wrk_command
from bench.wrkout import parse_summary
from toolkit.tables import markdown_table

ROOT = Path(__file__).resolve().parent.parent
MODES = ("reuseport", "shared")
_CONNECTIONS = re.compile(r'^gateway_worker_connections_total\{worker="(\d+)"\} (\S+)$', re.M)


@dataclass
class Spread:
    mode: str
    sequential: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)
    cpu_share: list[float] = field(default_factory=list)
    requests_per_s: float = 0.0
    kill_requests: int = 0
    kill_failures: int = 0
    kill_slowest_ms: float = 0.0
    replaced_after_ms: float = 0.0


def worker_connections(port: int) -> list[int]:
    status, body = http_get(port, "/metrics", timeout_s=5)
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    found = {int(w): int(float(n)) for w, n in _CONNECTIONS.findall(body.decode())}
    return [found[w] for w in sorted(found)]


def worker_pids(log: Path) -> dict[int, int]:
    """worker index -> pid, from the gateway's `worker_serving` lines (the latest wins)."""
    pids: dict[int, int] = {}
    for line in log.read_text().splitlines():
        if '"worker_serving"' in line:
            event = json.loads(line)
            pids[int(event["worker"])] = int(event["pid"])
    return pids


def one_request(port: int, timeout_s: float = 5.0) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
            sock.sendall(b"GET /data HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        return reply.startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def measure_mode(
    mode: str, workers: int, pool: StoragePool, kids: Children, settings: BenchSettings
) -> Spread:
    port = free_port()
    log = kids.log_dir / f"gateway-{mode}.log"
    command = [sys.executable, "-m", "gateway_service", "--port", str(port)]
    command += ["--workers", str(workers), "--listen", mode]
    child = kids.start(
        f"gateway-{mode}",
        command,
        env={**gateway_env("gateway", pool.ports, settings), "ACCESS_LOG": "false"},
        cwd=ROOT,
        output=log,
    )
    wait_until(f"gateway ({mode})", lambda: http_get(port, "/health")[0] == 200, 30, child)
    wait_until("all workers", lambda: len(worker_pids(log)) == workers, 30, child)
    spread = Spread(mode)

    before = worker_connections(port)
    for _ in range(2000):
        one_request(port)
    after = worker_connections(port)
    spread.sequential = [a - b for a, b in zip(after, before, strict=True)]

    pids = worker_pids(log)
    cpu_before = [cpu_seconds([pids[w]]) for w in range(workers)]
    before = worker_connections(port)
    output = run_wrk(
        wrk_command(f"http://127.0.0.1:{port}/data", 32, 2, 5, SUMMARY_SCRIPT, None), 5
    )
    after = worker_connections(port)
    cpu = [cpu_seconds([pids[w]]) - cpu_before[w] for w in range(workers)]
    spread.held = [a - b for a, b in zip(after, before, strict=True)]
    spread.cpu_share = [round(c / sum(cpu), 3) if sum(cpu) else 0.0 for c in cpu]
    spread.requests_per_s = parse_summary(output).requests_per_second

    results: list[tuple[bool, float]] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            started = time.monotonic()
            ok = one_request(port)
            results.append((ok, time.monotonic() - started))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # load is running: the kill lands mid-stream
    victim = pids[0]
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    wait_until("replacement", lambda: worker_pids(log).get(0, victim) != victim, 10, child)
    spread.replaced_after_ms = round((time.monotonic() - killed_at) * 1000, 1)
    time.sleep(2.0)
    stop.set()
    for thread in threads:
        thread.join(10)
    spread.kill_requests = len(results)
    spread.kill_failures = sum(not ok for ok, _ in results)
    spread.kill_slowest_ms = round(max(seconds for _, seconds in results) * 1000, 1)
    kids.stop(child)
    return spread


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.spread", description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    settings = BenchSettings(server_cpus=None)
    with children(Path(tempfile.mkdtemp(prefix="bench-spread-"))) as kids:
        pool = StoragePool(kids, settings, ROOT)
        pool.start_missing()
        spreads = [measure_mode(mode, args.workers, pool, kids, settings) for mode in MODES]
    rows = [
        [
            s.mode,
            " / ".join(map(str, s.sequential)),
            " / ".join(map(str, s.held)),
            " / ".join(f"{share:.0%}" for share in s.cpu_share),
            f"{s.requests_per_s:,.0f}",
            f"{s.kill_failures} of {s.kill_requests}",
            f"{s.kill_slowest_ms:,.0f}",
            f"{s.replaced_after_ms:,.0f}",
        ]
        for s in spreads
    ]
    header = [
        "listen",
        "2,000 new connections, per worker",
        "32 keep-alive connections, per worker",
        "CPU share under wrk",
        "req/s",
        "failed while a worker was killed",
        "slowest request then (ms)",
        "worker replaced after (ms)",
    ]
    print("\n".join(markdown_table(header, rows)))


if __name__ == "__main__":
    main()
