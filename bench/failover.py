"""Failover under load: one storage service killed mid-run; all stopped, then brought back."""

import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from bench.settings import BenchSettings
from bench.targets import StoragePool, Target, wait_serving_all
from bench.wrk import STATUSES_SCRIPT, BackgroundWrk, wrk_command
from bench.wrkout import StatusBucket, parse_statuses, parse_summary
from toolkit.recovery import AfterRecovery, Answer, after_recovery

# Generous: nginx brings a failed server back only after its fail_timeout (10 s).
REJOIN_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class KillOne:
    """wrk running while one of the storage services is SIGKILLed."""

    requests: int
    non_2xx: int
    socket_errors: int
    socket_errors_by_kind: dict[str, int]
    statuses: dict[int, int]


@dataclass(frozen=True)
class Recovery:
    """wrk running while every storage service stops, stays down, and starts again."""

    outage_s: float
    restart_s: float
    window_s: float
    during_outage: dict[int, int]
    after_recovery: dict[int, int]
    errors_after_recovery: int
    # toolkit/recovery.py's vocabulary, from "all storage services healthy again".
    first_2xx_after_s: float | None
    last_error_after_s: float | None
    socket_errors_whole_run: int
    socket_errors_by_kind: dict[str, int]


@dataclass(frozen=True)
class Failover:
    kill_one: KillOne
    recovery: Recovery

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _statuses(buckets: list[StatusBucket]) -> dict[int, int]:
    counts: Counter[int] = Counter()
    for b in buckets:
        counts[b.status] += b.count
    return dict(sorted(counts.items()))


def split_recovery(
    buckets: list[StatusBucket], stop_ms: int, recovered_ms: int, end_ms: int
) -> tuple[list[StatusBucket], list[StatusBucket]]:
    """Buckets of the outage, and buckets wholly after recovery (one straddling it: outage)."""
    during = [b for b in buckets if stop_ms <= b.start_ms < recovered_ms]
    after = [b for b in buckets if recovered_ms <= b.start_ms < end_ms]
    return during, after


def after_recovery_figures(buckets: list[StatusBucket], recovered_ms: int) -> AfterRecovery:
    """toolkit/recovery.py's figures for wrk's buckets after recovery; a bucket's errors came
    before its end, so its end is their time ("last error" is an upper bound)."""
    answers = [
        Answer(
            t=b.start_ms / 1000,
            ok=200 <= b.status < 300,
            count=b.count,
            t_last=(b.start_ms + b.width_ms) / 1000,
        )
        for b in buckets
    ]
    return after_recovery(answers, recovered_ms / 1000)


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 2)


def _command(target: Target, settings: BenchSettings, duration_s: int) -> list[str]:
    return wrk_command(
        target.url, settings.connections, settings.wrk_threads, duration_s, STATUSES_SCRIPT,
        settings.client_cpus,
    )  # fmt: skip


def kill_one(target: Target, pool: StoragePool, settings: BenchSettings) -> KillOne:
    duration = settings.failover_duration_s
    wrk = BackgroundWrk(_command(target, settings, duration), duration)
    try:
        time.sleep(duration / 3)
        pool.kill(1)
        out = wrk.finish(interrupt=False)
    finally:
        wrk.kill()
    summary = parse_summary(out)
    return KillOne(
        requests=summary.requests,
        non_2xx=summary.non_2xx_3xx,
        socket_errors=summary.socket_errors,
        socket_errors_by_kind=summary.socket_errors_by_kind(),
        statuses=_statuses(parse_statuses(out)),
    )


def recovery(target: Target, pool: StoragePool, settings: BenchSettings) -> Recovery:
    # Upper bound only: the run is interrupted once the recovery window has passed.
    bound = int(1 + settings.outage_s + 60 + settings.recovery_window_s)
    wrk = BackgroundWrk(_command(target, settings, bound), bound)
    try:
        time.sleep(1)
        stop_ms = int(time.time() * 1000)
        pool.stop_all()
        time.sleep(settings.outage_s)
        restart = time.monotonic()
        pool.start_missing()
        restart_s = time.monotonic() - restart
        recovered_ms = int(time.time() * 1000)
        time.sleep(settings.recovery_window_s)
        end_ms = int(time.time() * 1000)
        out = wrk.finish(interrupt=True)
    finally:
        wrk.kill()
    buckets = parse_statuses(out)
    summary = parse_summary(out)
    during, after = split_recovery(buckets, stop_ms, recovered_ms, end_ms)
    figures = after_recovery_figures(after, recovered_ms)
    return Recovery(
        outage_s=settings.outage_s,
        restart_s=round(restart_s, 2),
        window_s=settings.recovery_window_s,
        during_outage=_statuses(during),
        after_recovery=_statuses(after),
        errors_after_recovery=figures.errors_after,
        first_2xx_after_s=_rounded(figures.first_2xx_after_s),
        last_error_after_s=_rounded(figures.last_error_after_s),
        socket_errors_whole_run=summary.socket_errors,
        socket_errors_by_kind=summary.socket_errors_by_kind(),
    )


def failover(target: Target, pool: StoragePool, settings: BenchSettings) -> Failover:
    """Both failure drills against one gateway, starting and ending with every service up."""
    pool.start_missing()
    wait_serving_all(target, pool.names, REJOIN_TIMEOUT_S)
    killed = kill_one(target, pool, settings)
    pool.start_missing()
    wait_serving_all(target, pool.names, REJOIN_TIMEOUT_S)
    recovered = recovery(target, pool, settings)
    wait_serving_all(target, pool.names, REJOIN_TIMEOUT_S)
    return Failover(killed, recovered)


__all__ = ["Failover", "failover"]
