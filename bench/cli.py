"""`python -m bench`: start everything, measure, drill failover, write and print the results."""

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.cores import run_cores
from bench.failover import failover
from bench.measure import added, medians, run_rounds
from bench.memory import measure_memory
from bench.nginx_config import NginxTemplateError
from bench.processes import BenchError, children
from bench.report import ratios, render_markdown
from bench.settings import ALL_TARGETS, GATEWAYS, MIB, TARGETS, BenchSettings, smoke_settings
from bench.targets import StoragePool, start_targets
from toolkit.machine import describe_machine, package_version, tool_version
from toolkit.results import RESULTS_ROOT, run_folder

REPO_ROOT = Path(__file__).resolve().parent.parent
# The versions the report states (bench/report.render_settings).
PACKAGES = ("uvicorn", "uvloop", "httptools", "fastapi", "httpx", "aiohttp", "pyreqwest")
# Each tool's version command (Caddy has no -v).
TOOLS = {
    "nginx": ("nginx", "-v"),
    "haproxy": ("haproxy", "-v"),
    "caddy": ("caddy", "version"),
    "wrk": ("wrk", "-v"),
}


def _cpus(value: str) -> str | None:
    return None if value.lower() in ("", "none") else value


def _targets(value: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    unknown = [n for n in names if n not in ALL_TARGETS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"targets are among {', '.join(ALL_TARGETS)}; got {value!r} (a --gateway-file "
            "gateway is one when its description has a `command`)"
        )
    return names


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return number


def _non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return number


def _counts(value: str) -> tuple[int, ...]:
    try:
        counts = tuple(sorted({int(n) for n in value.split(",") if n.strip()}))
    except ValueError:
        counts = ()
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError(f"worker counts like 1,2; got {value!r}")
    return counts


def _seconds(value: str) -> float:
    number = float(value)
    if not 0 < number <= 600:
        raise argparse.ArgumentTypeError(f"must be a number of seconds in (0, 600], got {value}")
    return number


def parse_args(argv: list[str] | None) -> tuple[BenchSettings, argparse.Namespace]:
    d = BenchSettings()
    # Pinning to separate cores needs two; on one core, the defaults leave placement to the kernel.
    can_pin = (os.cpu_count() or 1) >= 2
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark our gateway against nginx, HAProxy and Caddy (CPU per request, "
        "latency, failover, memory with large bodies), all as local processes on 127.0.0.1.",
        epilog="targets (* in the default list; the others only when named):\n"
        + "\n".join(f"  {'*' if t.default else ' '} {t.name:<16}{t.description}" for t in TARGETS),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--smoke", action="store_true", help="a few seconds per target, one round (CI)")
    p.add_argument(
        "--targets",
        type=_targets,
        default=d.targets,
        help="comma-separated, of: " + ",".join(ALL_TARGETS) + f" (default: {','.join(d.targets)})",
    )
    # Read before this parser runs (bench/__main__.py); declared here for --help and checking.
    p.add_argument(
        "--gateway-file",
        action="append",
        metavar="FILE",
        help="a gateway description (TOML, docs/contract-suite.md) with a `command`: adds that "
        "gateway to the targets (also GATEWAY_FILES; name it in --targets to measure it)",
    )
    p.add_argument("--rounds", type=_positive, default=d.rounds)
    p.add_argument(
        "--connections",
        type=_positive,
        default=d.connections,
        help="wrk connections for throughput",
    )
    p.add_argument("--threads", type=_positive, default=d.wrk_threads, help="wrk threads")
    p.add_argument(
        "--duration",
        type=_positive,
        default=d.duration_s,
        help="seconds of load per target and round",
    )
    p.add_argument(
        "--latency-duration",
        type=_positive,
        default=d.latency_duration_s,
        help="seconds at 1 connection",
    )
    p.add_argument(
        "--warmup",
        type=_non_negative,
        default=d.warmup_s,
        help="seconds of load before measuring (0: none)",
    )
    p.add_argument(
        "--server-cpus",
        type=_cpus,
        default=d.server_cpus if can_pin else None,
        help="taskset list for gateways and storage; 'none' to not pin",
    )
    p.add_argument(
        "--client-cpus",
        type=_cpus,
        default=d.client_cpus if can_pin else None,
        help="taskset list for wrk; 'none' to not pin",
    )
    p.add_argument("--data-bytes", type=_positive, default=d.data_bytes)
    p.add_argument(
        "--access-log",
        choices=("file", "devnull"),
        default=d.access_log,
        help="where every gateway's access log goes",
    )
    p.add_argument("--no-failover", action="store_true", help="skip the failover drills")
    p.add_argument("--failover-duration", type=_positive, default=d.failover_duration_s)
    p.add_argument(
        "--outage", type=_seconds, default=d.outage_s, help="seconds all storage services stay down"
    )
    p.add_argument(
        "--recovery-window",
        type=_seconds,
        default=d.recovery_window_s,
        help="seconds counted after recovery",
    )
    p.add_argument(
        "--no-memory", action="store_true", help="skip the memory phase (large bodies, RSS)"
    )
    p.add_argument(
        "--memory-clients",
        type=_positive,
        default=d.memory_clients,
        help="concurrent clients fetching the large body",
    )
    p.add_argument(
        "--memory-body-mib",
        type=_positive,
        default=d.memory_body_bytes // MIB,
        help="size of the large body, MiB",
    )
    p.add_argument(
        "--memory-deadline",
        type=_seconds,
        default=d.memory_deadline_s,
        help="seconds after which a memory client gives up",
    )
    p.add_argument(
        "--cores",
        type=_counts,
        default=d.cores,
        metavar="N,N",
        help="cores phase: the worker (thread, GOMAXPROCS) counts every gateway is measured at "
        f"(default: {','.join(map(str, d.cores))})",
    )
    p.add_argument("--no-cores", action="store_true", help="skip the cores phase")
    p.add_argument("--results-dir", type=Path, default=RESULTS_ROOT / "bench")
    p.add_argument(
        "--source-dir",
        type=Path,
        default=REPO_ROOT,
        help="where storage_service/ and gateway_service/ are",
    )
    p.add_argument(
        "--nginx-dir", type=Path, default=REPO_ROOT / "nginx", help="the project's nginx templates"
    )
    a = p.parse_args(argv)
    settings = BenchSettings(
        targets=a.targets,
        rounds=a.rounds,
        connections=a.connections,
        wrk_threads=a.threads,
        duration_s=a.duration,
        latency_duration_s=a.latency_duration,
        warmup_s=a.warmup,
        server_cpus=a.server_cpus,
        client_cpus=a.client_cpus,
        data_bytes=a.data_bytes,
        access_log=a.access_log,
        failover=not a.no_failover,
        failover_duration_s=a.failover_duration,
        outage_s=a.outage,
        recovery_window_s=a.recovery_window,
        memory=not a.no_memory,
        memory_clients=a.memory_clients,
        memory_body_bytes=a.memory_body_mib * MIB,
        memory_deadline_s=a.memory_deadline,
        cores=() if a.no_cores else a.cores,
    )
    return (smoke_settings(settings) if a.smoke else settings), a


def machine_and_versions() -> dict[str, str | int]:
    machine = describe_machine()
    return {
        "nproc": machine.nproc,
        "cpu_model": machine.cpu_model,
        "kernel": machine.kernel,
        "python": machine.python,
        **{name: package_version(name) for name in PACKAGES},
        **{name: tool_version(*command) for name, command in TOOLS.items()},
    }


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(settings: BenchSettings, a: argparse.Namespace, started_at: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-") as work, children(Path(work)) as kids:
        pool = StoragePool(kids, settings, a.source_dir)
        pool.start_missing()
        log(f"storage services on ports {pool.ports}; work dir {work}")
        targets = start_targets(kids, pool, settings, a.source_dir, a.nginx_dir)
        log("targets: " + ", ".join(f"{t.name} :{t.port} (pid {t.root.pid})" for t in targets))
        samples = run_rounds(targets, settings, log, pool.pids())
        cores: dict[str, Any] = {}
        if settings.cores and any(n in GATEWAYS for n in settings.targets):
            log(f"cores phase: every gateway at {', '.join(map(str, settings.cores))} worker(s)")
            cores = run_cores(settings, a.source_dir, a.nginx_dir, Path(work) / "cores", log)
        drills: dict[str, dict[str, Any]] = {}
        if settings.failover:
            for target in (t for t in targets if t.name in GATEWAYS):
                log(f"failover drill: {target.name}")
                try:
                    drills[target.name] = failover(target, pool, settings).as_dict()
                except BenchError as error:
                    # One gateway that never serves again must not cost the others' figures.
                    log(f"failover drill: {target.name} failed: {error}")
                    drills[target.name] = {"error": str(error)}
        memory: dict[str, Any] = {}
        gateways = [n for n in settings.targets if n in GATEWAYS]
        if settings.memory and gateways:
            log(
                f"memory phase: {settings.memory_clients} clients x "
                f"{settings.memory_body_bytes / MIB:g} MiB through {', '.join(gateways)}"
            )
            memory = measure_memory(
                gateways, settings, a.source_dir, a.nginx_dir, Path(work) / "memory", log
            )
        results = {
            "started_at": started_at,
            "settings": settings.as_dict(),
            "machine": machine_and_versions(),
            "samples": {n: [s.as_dict() for s in runs] for n, runs in samples.items()},
            "medians": medians(samples),
            "added_p50_us": added(samples, "p50_us_1"),
            "added_p99_us": added(samples, "p99_us_1"),
            "cores": cores,
            "failover": drills,
            "memory": memory,
        }
    normalised: dict[str, Any] = json.loads(json.dumps(results))
    return normalised


def main(argv: list[str] | None = None) -> int:
    settings, a = parse_args(argv)
    started = datetime.now(UTC)
    try:
        results = run(settings, a, started.strftime("%Y-%m-%dT%H:%M:%SZ"))
    except (BenchError, NginxTemplateError) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; every process it started has been stopped", file=sys.stderr)
        return 130
    results["ratios"] = ratios(results)
    markdown = render_markdown(results)
    out_dir = run_folder(a.results_dir, started)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "results.md").write_text(markdown)
    print(markdown)
    print(f"written to {out_dir}/results.md and results.json")
    return 0
