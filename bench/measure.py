"""The interleaved rounds: throughput, CPU per request and latency for each target."""

import resource
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.procstat import cpu_seconds, descendants, machine_busy_seconds
from bench.settings import BenchSettings
from bench.targets import Target
from bench.wrk import SUMMARY_SCRIPT, run_wrk, wrk_command
from bench.wrkout import parse_summary


@dataclass(frozen=True)
class Sample:
    """One target in one round."""

    requests_per_s: float
    p50_us_n: float
    p99_us_n: float
    cpu_us_per_request: float
    p50_us_1: float
    p99_us_1: float
    errors: int
    # What the rest of the exchange cost per request during the N-connection run: wrk itself,
    # and the upstream's processes (0 when not measured), to see what shares the machine.
    wrk_cpu_us_per_request: float = 0.0
    upstream_cpu_us_per_request: float = 0.0
    # CPUs kept busy by anything else during that run (the machine's busy time less the
    # target's, wrk's and the upstream's, per second): other work that makes a figure noisy.
    other_cpus: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FIGURES = tuple(Sample.__dataclass_fields__)


def _wrk(target: Target, settings: BenchSettings, connections: int, duration_s: int) -> str:
    command = wrk_command(
        target.url,
        connections,
        settings.wrk_threads,
        duration_s,
        SUMMARY_SCRIPT,
        settings.client_cpus,
    )
    return run_wrk(command, duration_s)


def _children_cpu_s() -> float:
    """CPU seconds of this process's children that have been waited for (wrk, once it ends)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(target: Target, settings: BenchSettings, upstream_roots: Sequence[int] = ()) -> Sample:
    """Warm up, load with N connections (throughput, CPU), then 1 connection (latency).

    `upstream_roots`: the processes (with their descendants) that serve the target's upstream.
    """
    if settings.warmup_s:
        _wrk(target, settings, settings.connections, settings.warmup_s)
    pids = target.cpu_pids()
    # `direct` loads an upstream service itself: its CPU is the target's, not the upstream's.
    upstream = [p for root in upstream_roots for p in (root, *descendants(root)) if p not in pids]
    machine_before = machine_busy_seconds()
    cpu_before = cpu_seconds(pids)
    upstream_before = cpu_seconds(upstream)
    wrk_before = _children_cpu_s()
    loaded = parse_summary(_wrk(target, settings, settings.connections, settings.duration_s))
    wrk_s = _children_cpu_s() - wrk_before
    target_s = cpu_seconds(pids) - cpu_before
    upstream_s = cpu_seconds(upstream) - upstream_before
    other_s = machine_busy_seconds() - machine_before - target_s - wrk_s - upstream_s
    single = parse_summary(_wrk(target, settings, 1, settings.latency_duration_s))
    per_request = 1e6 / max(loaded.requests, 1)
    return Sample(
        requests_per_s=loaded.requests_per_second,
        p50_us_n=loaded.p50_us,
        p99_us_n=loaded.p99_us,
        cpu_us_per_request=target_s * per_request,
        p50_us_1=single.p50_us,
        p99_us_1=single.p99_us,
        errors=loaded.socket_errors
        + loaded.non_2xx_3xx
        + single.socket_errors
        + single.non_2xx_3xx,
        wrk_cpu_us_per_request=wrk_s * per_request,
        upstream_cpu_us_per_request=upstream_s * per_request,
        # Per second of wrk's run; the reads around it add milliseconds, and ticks are 10 ms.
        other_cpus=max(other_s, 0.0) / max(loaded.duration_us / 1e6, 1e-3),
    )


def round_order(names: list[str], round_index: int) -> list[str]:
    """Rotate the order each round so no target always runs first (or right after another)."""
    shift = round_index % len(names)
    return names[shift:] + names[:shift]


def run_rounds(
    targets: list[Target],
    settings: BenchSettings,
    progress: Any = print,
    upstream_roots: Sequence[int] = (),
    place: Callable[[Target], BenchSettings] | None = None,
) -> dict[str, list[Sample]]:
    """Every target once per round, in rotated order. `place`, when given, is called right
    before a target's measurement and returns the settings to measure it with (the cores phase
    moves wrk and the upstream to the CPUs that target's gateway leaves free)."""
    by_name = {t.name: t for t in targets}
    samples: dict[str, list[Sample]] = {t.name: [] for t in targets}
    for round_index in range(settings.rounds):
        for name in round_order(list(by_name), round_index):
            target = by_name[name]
            placed = settings if place is None else place(target)
            sample = measure(target, placed, upstream_roots)
            samples[name].append(sample)
            progress(
                f"round {round_index + 1}/{settings.rounds} {name}: "
                f"{sample.requests_per_s:.0f} req/s, {sample.cpu_us_per_request:.1f} us CPU/req, "
                f"p50@1 {sample.p50_us_1:.0f} us, errors {sample.errors}"
            )
    return samples


def medians(samples: dict[str, list[Sample]]) -> dict[str, dict[str, float]]:
    return {
        name: {f: statistics.median(getattr(s, f) for s in runs) for f in FIGURES}
        for name, runs in samples.items()
        if runs
    }


def added(samples: dict[str, list[Sample]], figure: str = "p50_us_1") -> dict[str, float]:
    """Median over rounds of (target's latency `figure` - direct's in the same round)."""
    direct = samples.get("direct")
    if not direct:
        return {}
    return {
        name: statistics.median(
            getattr(s, figure) - getattr(d, figure) for s, d in zip(runs, direct, strict=True)
        )
        for name, runs in samples.items()
        if name != "direct" and runs
    }
