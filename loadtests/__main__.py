"""Compare the gateways: every scenario against every gateway, then one side-by-side summary.

    python -m loadtests            # full comparison (about 10 minutes), deploys what is not running
    python -m loadtests --short    # under 2 minutes; fails unless every run produced a result

Locust monkey-patches the process it runs in, so each run is a `locust` subprocess; this script only
reads what the runs wrote (locust's CSV/HTML and the --stats-json figures).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from docker.errors import DockerException

from loadtests._charts import share_chart, timeline_chart
from loadtests._faults import FaultError, docker_client, project_publishing
from loadtests._machine import deployment, machine
from loadtests._plan import Durations, Scenario, phases, total_s
from loadtests._summary import Result, render
from toolkit.results import RESULTS_ROOT, run_folder
from toolkit.status import read_status
from toolkit.waiting import ConditionTimeout, wait_until

REPO = Path(__file__).resolve().parent.parent
LOADTESTS = Path(__file__).resolve().parent
MAKE_TARGETS = {"ours": "deploy", "nginx": "deploy-nginx"}
HEALTHY_WAIT_S = 90.0
DEPLOY_TIMEOUT_S = 600.0

FULL = Durations(steady_s=60, warmup_s=15, fault_s=20, recovery_s=25)
SHORT = Durations(steady_s=5, warmup_s=3, fault_s=3, recovery_s=4)


@dataclass(frozen=True, slots=True)
class Gateway:
    name: str
    url: str


def parse_gateways(text: str) -> list[Gateway]:
    gateways = []
    for entry in text.split(","):
        name, sep, url = entry.strip().partition("=")
        parts = urlsplit(url)
        if not sep or not name or parts.scheme != "http" or parts.hostname != "127.0.0.1":
            raise argparse.ArgumentTypeError(
                f"{entry!r}: expected name=http://127.0.0.1:PORT (load goes to 127.0.0.1 only)"
            )
        gateways.append(Gateway(name, url.rstrip("/")))
    return gateways


def worker_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = -1
    if count < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or a positive whole number, got {text!r}")
    return count


def load_generator(workers: int) -> str:
    """How the load was generated, as the summary states it."""
    if not workers:
        return "locust's local runner (one process)"
    return f"a locust master and {workers} worker processes on this machine (--processes {workers})"


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtests", description=__doc__.split("\n")[0])
    parser.add_argument("--short", action="store_true", help="the CI version: a few seconds each")
    parser.add_argument(
        "--gateways",
        type=parse_gateways,
        default=parse_gateways("ours=http://127.0.0.1:8000,nginx=http://127.0.0.1:8080"),
        help="name=url pairs, comma-separated (default: ours on :8000, nginx on :8080)",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(s.value for s in Scenario),
        help="comma-separated subset of: " + ", ".join(s.value for s in Scenario),
    )
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--spawn-rate", type=float, default=20.0)
    parser.add_argument("--user-rps", type=float, default=10.0, help="per user; 0: no pacing")
    parser.add_argument("--steady-seconds", type=float, help="default 60, or 5 with --short")
    parser.add_argument("--warmup-seconds", type=float, help="default 15, or 3 with --short")
    parser.add_argument("--fault-seconds", type=float, help="default 20, or 3 with --short")
    parser.add_argument("--recovery-seconds", type=float, help="default 25, or 4 with --short")
    parser.add_argument("--target-service", default="storage2")
    parser.add_argument(
        "--workers",
        type=worker_count,
        default=0,
        help="locust worker processes per run (distributed mode, --processes N); "
        "0: locust's local runner (default)",
    )
    deploying = parser.add_mutually_exclusive_group()
    deploying.add_argument(
        "--deploy",
        action="store_true",
        help="(re)deploy both with `make deploy`/`make deploy-nginx` and fault injection enabled, "
        "even when they run (default: deploy only what does not answer)",
    )
    deploying.add_argument(
        "--no-deploy",
        action="store_true",
        help="fail instead of deploying a gateway that does not answer",
    )
    parser.add_argument("--out", type=Path, help="default: results/loadtest/<UTC timestamp>")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="DIR",
        help="only rewrite summary.md and the charts of the finished comparison in DIR",
    )
    options = parser.parse_args(argv)
    try:
        options.scenarios = [Scenario(s.strip()) for s in options.scenarios.split(",")]
    except ValueError as error:
        parser.error(str(error))
    base = SHORT if options.short else FULL
    options.durations = Durations(
        steady_s=options.steady_seconds or base.steady_s,
        warmup_s=options.warmup_seconds or base.warmup_s,
        fault_s=options.fault_seconds or base.fault_s,
        recovery_s=options.recovery_seconds or base.recovery_s,
    )
    return options


def wait_healthy(url: str, timeout_s: float) -> bool:
    """Waits until the gateway reports every storage service available (bounded)."""

    def all_available() -> bool:
        status = read_status(url)
        return status is not None and status.all_available

    try:
        wait_until(
            all_available, timeout=timeout_s, interval=0.5, what="every storage service available"
        )
    except ConditionTimeout:
        return False
    return True


def ensure_deployed(gateway: Gateway, options: argparse.Namespace) -> str | None:
    """None when the gateway is up (deploying it if needed); otherwise why it cannot run."""
    if not options.deploy and read_status(gateway.url) is not None:
        return None
    target = MAKE_TARGETS.get(gateway.name)
    if options.no_deploy or target is None:
        return f"{gateway.url} does not answer /status and was not deployed"
    print(f"{gateway.name}: make {target} (with fault injection enabled)", flush=True)
    env = {**os.environ, "ENABLE_FAULT_INJECTION": "true"}
    try:
        done = subprocess.run(
            ["make", target], cwd=REPO, env=env, timeout=DEPLOY_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"make {target} failed: {error}"
    if done.returncode != 0:
        return f"make {target} exited with {done.returncode}"
    return None


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


def locust_command(
    options: argparse.Namespace, gateway: Gateway, scenario: Scenario, prefix: Path
) -> list[str]:
    d: Durations = options.durations
    return [
        sys.executable, "-m", "locust", "-f", str(LOADTESTS), "--headless", "--only-summary",
        "--host", gateway.url, "--scenario", scenario.value,
        "--users", str(options.users), "--spawn-rate", str(options.spawn_rate),
        "--user-rps", str(options.user_rps), "--target-service", options.target_service,
        "--steady-seconds", str(d.steady_s), "--warmup-seconds", str(d.warmup_s),
        "--fault-seconds", str(d.fault_s), "--recovery-seconds", str(d.recovery_s),
        "--csv", str(prefix), "--html", f"{prefix}.html", "--stats-json", f"{prefix}.json",
        *distributed_options(options.workers),
    ]  # fmt: skip


def run_locust(command: list[str], log: Any, timeout_s: float) -> int | str:
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


def run_one(
    options: argparse.Namespace, gateway: Gateway, scenario: Scenario, out: Path
) -> Result | None:
    prefix = out / f"{gateway.name}-{scenario.value}"
    if not wait_healthy(gateway.url, HEALTHY_WAIT_S):
        print(
            f"{gateway.name} {scenario}: not every storage service available; skipped", flush=True
        )
        return None
    budget = total_s(phases(scenario, options.durations)) + 90
    print(f"{gateway.name} {scenario}: running", flush=True)
    with open(f"{prefix}.log", "w") as log:
        code = run_locust(locust_command(options, gateway, scenario, prefix), log, budget)
    result_file = Path(f"{prefix}.json")
    if not result_file.exists():
        print(f"{gateway.name} {scenario}: no result (locust exit {code}, see {prefix}.log)")
        return None
    result: Result = json.loads(result_file.read_text())
    print(f"{gateway.name} {scenario}: locust exit {code}", flush=True)
    return result


def deployment_meta(gateways: list[Gateway]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    try:
        client = docker_client()
    except FaultError:
        return {"deployments": "Docker engine unreachable"}
    for gateway in gateways:
        try:
            project = project_publishing(client, urlsplit(gateway.url).port or 80)
        except (FaultError, DockerException):
            continue
        meta[f"deployment {gateway.name}"] = deployment(project)
    return meta


def write_report(
    out: Path, results: dict[str, dict[str, Result | None]], meta: dict[str, Any]
) -> None:
    """Charts and summary.md in `out`, from the runs' results and the run's settings."""
    gateways = list(next(iter(results.values()), {}))
    files = []
    for scenario, runs in results.items():
        if timeline_chart(scenario, runs, out / f"timeline-{scenario}.png"):
            files.append(f"timeline-{scenario}.png")
    if share_chart(results, gateways, out / "share.png"):
        files.append("share.png")
    files += sorted(p.name for p in out.iterdir() if p.suffix in (".html", ".csv", ".json", ".log"))
    (out / "summary.md").write_text(render(results, gateways, meta, files))


def missing_results(results: dict[str, dict[str, Result | None]]) -> list[str]:
    return [
        f"{scenario} x {gateway}: {'no result' if r is None else r.get('error') or 'no requests'}"
        for scenario, runs in results.items()
        for gateway, r in runs.items()
        if r is None or r.get("error") or not r["locust"]["requests"]
    ]


def main(argv: list[str] | None = None) -> int:
    options = arguments(argv)
    if options.render:
        # Summary and charts again from a finished comparison (e.g. after changing the summary).
        out = options.render
        results = json.loads((out / "results.json").read_text())
        write_report(out, results, json.loads((out / "meta.json").read_text()))
        print(f"summary: {out / 'summary.md'}")
        return 0
    started = time.monotonic()
    stamp = datetime.now(UTC)
    out = options.out or run_folder(RESULTS_ROOT / "loadtest", stamp)
    out.mkdir(parents=True, exist_ok=True)
    gateways: list[Gateway] = options.gateways
    problems = {g.name: ensure_deployed(g, options) for g in gateways}
    for name, problem in problems.items():
        if problem:
            print(f"{name}: {problem}", file=sys.stderr)
    results = {}
    for scenario in options.scenarios:  # alternate gateways per scenario, so drift hits both alike
        results[scenario.value] = {
            g.name: None if problems[g.name] else run_one(options, g, scenario, out)
            for g in gateways
        }
    meta: dict[str, Any] = {
        "mode": "short" if options.short else "full",
        "started_at": stamp.isoformat(timespec="seconds"),
        "duration": f"{time.monotonic() - started:.0f} s",
        "gateways": ", ".join(f"{g.name} {g.url}" for g in gateways),
        "load": f"{options.users} users, spawn rate {options.spawn_rate}/s, "
        f"{options.user_rps} requests/s per user (0: unpaced), GET /data",
        "load generator": load_generator(options.workers),
        "phases": f"steady {options.durations.steady_s:g} s; failure scenarios: warm-up "
        f"{options.durations.warmup_s:g} s, down {options.durations.fault_s:g} s, recovery "
        f"{options.durations.recovery_s:g} s; failed service: {options.target_service}",
        "rerun": "python -m loadtests " + " ".join(argv if argv is not None else sys.argv[1:]),
        **machine(),
        **deployment_meta(gateways),
    }
    (out / "results.json").write_text(json.dumps(results) + "\n")
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    write_report(out, results, meta)
    print(f"summary: {out / 'summary.md'} ({meta['duration']}; load from {meta['load generator']})")
    missing = missing_results(results)
    for line in missing:
        print(f"missing: {line}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
