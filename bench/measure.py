"""The interleaved rounds: throughput, CPU per request and latency for each target."""

import statistics
from dataclasses import asdict, dataclass
from typing import Any

from bench.procstat import cpu_seconds
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


def measure(target: Target, settings: BenchSettings) -> Sample:
    """Warm up, load with N connections (throughput, CPU), then 1 connection (latency)."""
    if settings.warmup_s:
        _wrk(target, settings, settings.connections, settings.warmup_s)
    pids = target.cpu_pids()
    cpu_before = cpu_seconds(pids)
    loaded = parse_summary(_wrk(target, settings, settings.connections, settings.duration_s))
    cpu_after = cpu_seconds(pids)
    single = parse_summary(_wrk(target, settings, 1, settings.latency_duration_s))
    return Sample(
        requests_per_s=loaded.requests_per_second,
        p50_us_n=loaded.p50_us,
        p99_us_n=loaded.p99_us,
        cpu_us_per_request=(cpu_after - cpu_before) * 1e6 / max(loaded.requests, 1),
        p50_us_1=single.p50_us,
        p99_us_1=single.p99_us,
        errors=loaded.socket_errors
        + loaded.non_2xx_3xx
        + single.socket_errors
        + single.non_2xx_3xx,
    )


def round_order(names: list[str], round_index: int) -> list[str]:
    """Rotate the order each round so no target always runs first (or right after another)."""
    shift = round_index % len(names)
    return names[shift:] + names[:shift]


def run_rounds(
    targets: list[Target], settings: BenchSettings, progress: Any = print
) -> dict[str, list[Sample]]:
    by_name = {t.name: t for t in targets}
    samples: dict[str, list[Sample]] = {t.name: [] for t in targets}
    for round_index in range(settings.rounds):
        for name in round_order(list(by_name), round_index):
            sample = measure(by_name[name], settings)
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


def added_p50(samples: dict[str, list[Sample]]) -> dict[str, float]:
    """Median over rounds of (target's p50 at 1 connection - direct's in the same round)."""
    direct = samples.get("direct")
    if not direct:
        return {}
    return {
        name: statistics.median(s.p50_us_1 - d.p50_us_1 for s, d in zip(runs, direct, strict=True))
        for name, runs in samples.items()
        if name != "direct" and runs
    }
