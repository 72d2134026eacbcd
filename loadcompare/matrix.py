"""The run matrix: every scenario against every gateway, each run a `locust` subprocess.

Locust monkey-patches the process it runs in, so the comparison never imports it: it starts one
`locust` per run and reads back the figures the run wrote (--stats-json).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from loadcompare.deploy import wait_all_available
from loadcompare.paths import LOCUSTFILES, REPO
from loadcompare.plan import Durations, Scenario, phases, total_s
from loadcompare.results import Results, RunResult
from loadcompare.targets import Gateway

HEALTHY_WAIT_S = 90.0
# A run may take this much longer than its phases (locust and its workers starting and stopping).
RUN_SLACK_S = 90.0


@dataclass(frozen=True, slots=True)
class Load:
    """What every run of a comparison gets, whatever the gateway and the scenario."""

    users: int
    spawn_rate: float
    user_rps: float  # per user; 0: unpaced
    durations: Durations
    target_service: str
    workers: int  # locust worker processes per run; 0: locust's local runner


def free_port() -> int:
    """A port nothing listens on now, for one run's master: a leftover master keeps 5557."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def distributed_options(workers: int) -> list[str]:
    """Locust's options for `workers` worker processes; the master listens on loopback only."""
    if not workers:
        return []
    port = str(free_port())
    return [
        "--processes", str(workers),
        "--master-bind-host", "127.0.0.1", "--master-bind-port", port, "--master-port", port,
    ]  # fmt: skip


def locust_command(load: Load, gateway: Gateway, scenario: Scenario, prefix: Path) -> list[str]:
    d = load.durations
    return [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILES), "--headless", "--only-summary",
        "--host", gateway.url, "--scenario", scenario.value,
        "--users", str(load.users), "--spawn-rate", str(load.spawn_rate),
        "--user-rps", str(load.user_rps), "--target-service", load.target_service,
        "--steady-seconds", str(d.steady_s), "--warmup-seconds", str(d.warmup_s),
        "--fault-seconds", str(d.fault_s), "--recovery-seconds", str(d.recovery_s),
        "--csv", str(prefix), "--html", f"{prefix}.html", "--stats-json", f"{prefix}.json",
        *distributed_options(load.workers),
    ]  # fmt: skip


def run_locust(command: list[str], log: IO[str], timeout_s: float) -> int | str:
    """Runs one locust; its worker processes are stopped with it, on timeout or Ctrl+C too."""
    # A process group of its own: killing only the master would leave its workers sending load.
    with subprocess.Popen(
        command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    ) as process:
        try:
            return process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return "timeout"
        except KeyboardInterrupt:
            # The group no longer gets the terminal's Ctrl+C; pass it on so faults are undone.
            os.killpg(process.pid, signal.SIGINT)
            process.wait()
            raise


def run_one(load: Load, gateway: Gateway, scenario: Scenario, out: Path) -> RunResult | None:
    """One scenario against one gateway; None when the run produced no figures."""
    prefix = out / f"{gateway.name}-{scenario}"
    if not wait_all_available(gateway.url, HEALTHY_WAIT_S):
        print(
            f"{gateway.name} {scenario}: not every storage service available; skipped", flush=True
        )
        return None
    budget = total_s(phases(scenario, load.durations)) + RUN_SLACK_S
    print(f"{gateway.name} {scenario}: running", flush=True)
    with open(f"{prefix}.log", "w") as log:
        code = run_locust(locust_command(load, gateway, scenario, prefix), log, budget)
    result_file = Path(f"{prefix}.json")
    if not result_file.exists():
        print(f"{gateway.name} {scenario}: no result (locust exit {code}, see {prefix}.log)")
        return None
    result = RunResult.read(result_file)
    print(f"{gateway.name} {scenario}: locust exit {code}", flush=True)
    return result


def run_all(
    load: Load,
    gateways: Sequence[Gateway],
    scenarios: Sequence[Scenario],
    problems: Mapping[str, str | None],
    out: Path,
) -> Results:
    """Every scenario against every gateway without a problem; the others get no result."""
    results: dict[Scenario, dict[str, RunResult | None]] = {}
    for scenario in scenarios:  # alternate gateways per scenario, so drift hits both alike
        results[scenario] = {
            g.name: None if problems[g.name] else run_one(load, g, scenario, out) for g in gateways
        }
    return results
