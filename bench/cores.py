"""The cores phase: every gateway with 1 and with 2 workers (or the counts of `--cores`), in one
run, in interleaved rounds like the main ones.

How each gateway gets its count: ours `--workers N`; nginx `worker_processes N`; HAProxy
`nbthread N`; Caddy `GOMAXPROCS=N`; a user's gateway `WORKERS=N` when its description lists
WORKERS (otherwise it is left out of this phase, and the results say so).

The upstream is not the storage services: a FastAPI service costs more CPU per request than any
gateway here, so with it behind them no gateway could show what a second worker gives. One
nginx process answers instead (bench/targets.StaticUpstream: each service's own /data and
/health bodies, a few microseconds per request). docs/bench.md has the measurements behind
that choice and behind where the processes run (`gateway_cpus`, `load_cpus`).
"""

import contextlib
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.measure import Sample, added, medians, run_rounds
from bench.processes import Children, children
from bench.procstat import descendants, rss_bytes, status_bytes
from bench.settings import GATEWAYS, BenchSettings
from bench.spread import worker_pids
from bench.targets import (
    StaticUpstream,
    Target,
    start_direct,
    start_target,
    takes_workers,
    wait_serving_all,
)

# The latencies whose excess over `direct` (same round) the phase reports, by results key.
ADDED = {
    "added_p50_us": "p50_us_1",
    "added_p99_us": "p99_us_1",
    "added_p50_us_n": "p50_us_n",
    "added_p99_us_n": "p99_us_n",
}
# What the first process of each gateway's tree is (the rest are its workers).
ROOT_ROLES = {"gateway": "supervisor", "nginx": "master"}


def contender(name: str, count: int) -> str:
    """One gateway at one worker count, as the phase's samples are keyed."""
    return f"{name} x{count}"


def cpu_list(cpus: Sequence[int]) -> str | None:
    """A taskset list; None (no pinning) for no CPUs."""
    return ",".join(map(str, cpus)) or None


def gateway_cpus(count: int, allowed: Sequence[int]) -> str | None:
    """The gateway at `count` workers runs on the first `count` CPUs the bench may use: a
    machine of that many cores (all of them, when it has fewer)."""
    return cpu_list(sorted(allowed)[:count])


def load_cpus(count: int, allowed: Sequence[int]) -> list[int]:
    """wrk and the upstream run on the CPUs the gateway at `count` workers leaves free, so they
    never take its cores' time (nor the upstream its wake-ups); when it leaves none (2 workers
    on 2 cores), on every CPU, where the kernel balances them with the gateway's workers.
    Pinned to one core a worker keeps busy, wrk (one thread driving every connection) would get
    only its share of that core; left free, the kernel can move it (docs/bench.md has the
    measurements)."""
    cpus = sorted(allowed)
    return cpus[count:] or cpus


def process_memory(
    name: str, root: int, log_path: Path | None, proc: Path = Path("/proc")
) -> list[dict[str, Any]]:
    """Each process of a gateway's tree with its role, RSS and PSS (bytes).

    RSS counts a page shared by forked workers once in each of them; PSS divides it among them,
    so PSS adds up to what the gateway holds.
    """
    workers: set[int] | None = None
    if name == "gateway" and log_path is not None and log_path.exists():
        # Our workers log their pid as they start; the other child is the control process.
        workers = set(worker_pids(log_path).values())
    rows = []
    for pid in [root, *sorted(descendants(root, proc))]:
        if pid == root:
            role = ROOT_ROLES.get(name, "process")
        elif name != "gateway":
            role = "worker"
        elif workers is None:
            role = "worker or control"
        else:
            role = "worker" if pid in workers else "control"
        rows.append(
            {
                "role": role,
                "pid": pid,
                "rss": rss_bytes([pid], proc),
                "pss": status_bytes([pid], "Pss", proc, source="smaps_rollup"),
            }
        )
    return rows


def summarise(samples: dict[str, list[Sample]]) -> dict[str, dict[str, float]]:
    """Per contender: the median figures, and each latency's excess over `direct`."""
    table = medians(samples)
    for key, figure in ADDED.items():
        for name, value in added(samples, figure).items():
            table[name][key] = value
    return table


def run_cores(
    settings: BenchSettings,
    source_dir: Path,
    nginx_dir: Path,
    work_dir: Path,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """The phase, start to end; its results (bench/report.py renders them)."""
    counts = sorted(set(settings.cores))
    named = [n for n in settings.targets if n in GATEWAYS]
    names = [n for n in named if takes_workers(n)]
    # --server-cpus none turns pinning off here too.
    allowed = sorted(os.sched_getaffinity(0)) if settings.server_cpus is not None else []
    placed = {count: gateway_cpus(count, allowed) for count in counts}
    loads = {count: load_cpus(count, allowed) for count in counts}
    # Each contender's gateway and count; `direct` is measured with wrk and the upstream placed
    # as for the smallest count.
    who: dict[str, tuple[str, int]] = {"direct": ("direct", counts[0])}
    with contextlib.ExitStack() as stack:

        def kids_in(folder: str) -> Children:
            (work_dir / folder).mkdir(parents=True, exist_ok=True)
            return stack.enter_context(children(work_dir / folder))

        # One upstream worker per core no gateway count uses (one when there is none), so on a
        # larger machine the upstream keeps up with the gateways' largest count.
        spare = len(allowed) - max(counts)
        upstream = StaticUpstream(kids_in("upstream"), settings, max(1, spare))
        contenders: list[Target] = []
        if "direct" in settings.targets:
            contenders.append(start_direct(upstream))
        for count in counts:
            kids = kids_in(f"x{count}")
            at = replace(settings, server_cpus=placed[count])
            for name in names:
                target = start_target(name, kids, upstream, at, source_dir, nginx_dir, count)
                contenders.append(replace(target, name=contender(name, count)))
                who[contender(name, count)] = (name, count)
        for target in contenders:
            direct = target.name == "direct"
            wait_serving_all(target, upstream.names[:1] if direct else upstream.names)
        progress(
            "cores phase: "
            + ", ".join(f"{t.name} :{t.port}" for t in contenders)
            + f"; upstream :{','.join(map(str, upstream.ports))}"
        )

        def place(target: Target) -> BenchSettings:
            cpus = loads[who[target.name][1]]
            root = upstream.child(0).pid
            for pid in [root, *descendants(root)] if cpus else []:
                with contextlib.suppress(ProcessLookupError):  # its failure shows in wrk's errors
                    os.sched_setaffinity(pid, cpus)
            return replace(settings, client_cpus=cpu_list(cpus))

        samples = run_rounds(
            contenders, settings, progress, upstream_roots=[upstream.child(0).pid], place=place
        )
        memory = {
            t.name: process_memory(who[t.name][0], t.root.pid, t.root.log_path)
            for t in contenders
            if t.name != "direct"
        }
    others = [s.other_cpus for runs in samples.values() for s in runs]
    return {
        "counts": counts,
        "gateways": names,
        "skipped": [n for n in named if n not in names],
        "upstream": "one nginx process: each storage service's /data and /health bodies "
        "as static replies, on a port each",
        "gateway_cpus": {str(count): cpus for count, cpus in placed.items()},
        "load_cpus": {str(count): cpu_list(cpus) for count, cpus in loads.items()},
        "cpus": len(allowed) or os.cpu_count(),
        "other_cpus": {"median": statistics.median(others), "max": max(others)} if others else {},
        "samples": {name: [s.as_dict() for s in runs] for name, runs in samples.items()},
        "figures": summarise(samples),
        "memory": memory,
    }
