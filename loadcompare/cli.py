"""Compare the gateways: every scenario against every gateway, then one side-by-side summary.

    python -m loadtests            # full comparison (about 10 minutes), deploys what is not running
    python -m loadtests --short    # under 2 minutes; fails unless every run produced a result

Locust monkey-patches the process it runs in, so each run is a `locust` subprocess; this script only
reads what the runs wrote (locust's CSV/HTML and the --stats-json figures).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from loadcompare.deploy import Deploy, ensure_deployed
from loadcompare.machine import machine
from loadcompare.matrix import Load, run_all
from loadcompare.plan import Durations, Scenario
from loadcompare.report import deployments, load_generator, missing_results, write_report
from loadcompare.results import Comparison, ComparisonMeta
from loadcompare.targets import Gateway, default_gateways, described, make_targets
from toolkit.gateways import GatewayFileError
from toolkit.results import RESULTS_ROOT, run_folder

PROG = "python -m loadtests"
FULL = Durations(steady_s=60, warmup_s=15, fault_s=20, recovery_s=25)
SHORT = Durations(steady_s=5, warmup_s=3, fault_s=3, recovery_s=4)


@dataclass(frozen=True, slots=True)
class Options:
    short: bool
    gateways: tuple[Gateway, ...]
    scenarios: tuple[Scenario, ...]
    load: Load
    deploy: Deploy
    out: Path | None
    render: Path | None  # only redo the report of the finished comparison in this folder


def parse_gateways(text: str) -> tuple[Gateway, ...]:
    gateways = []
    for entry in text.split(","):
        name, sep, url = entry.strip().partition("=")
        known = described(name) if not sep else None
        if known is not None:
            gateways.append(known)
            continue
        parts = urlsplit(url)
        if not sep or not name or parts.scheme != "http" or parts.hostname != "127.0.0.1":
            raise argparse.ArgumentTypeError(
                f"{entry!r}: expected a described gateway ({', '.join(make_targets())}) or "
                "name=http://127.0.0.1:PORT (load goes to 127.0.0.1 only)"
            )
        gateways.append(Gateway(name, url.rstrip("/")))
    return tuple(gateways)


def worker_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = -1
    if count < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or a positive whole number, got {text!r}")
    return count


def _parser() -> argparse.ArgumentParser:
    defaults = ", ".join(f"{g.name} on :{urlsplit(g.url).port}" for g in default_gateways())
    makes = "/".join(f"`make {target}`" for target in make_targets().values())
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("--short", action="store_true", help="the CI version: a few seconds each")
    parser.add_argument(
        "--gateways",
        type=parse_gateways,
        default=default_gateways(),
        help="described gateways or name=url pairs, comma-separated "
        f"(default: {defaults}; described: {', '.join(make_targets())})",
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
        help=f"(re)deploy both with {makes} and fault injection enabled, "
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
    return parser


def _deploy_policy(*, deploy: bool, no_deploy: bool) -> Deploy:
    if deploy:
        return Deploy.ALWAYS
    return Deploy.NEVER if no_deploy else Deploy.IF_MISSING


def arguments(argv: list[str] | None) -> Options:
    parser = _parser()
    parsed = parser.parse_args(argv)
    try:
        scenarios = tuple(Scenario(s.strip()) for s in parsed.scenarios.split(","))
    except ValueError as error:
        parser.error(str(error))
    base = SHORT if parsed.short else FULL
    durations = Durations(
        steady_s=parsed.steady_seconds or base.steady_s,
        warmup_s=parsed.warmup_seconds or base.warmup_s,
        fault_s=parsed.fault_seconds or base.fault_s,
        recovery_s=parsed.recovery_seconds or base.recovery_s,
    )
    return Options(
        short=parsed.short,
        gateways=parsed.gateways,
        scenarios=scenarios,
        load=Load(
            users=parsed.users,
            spawn_rate=parsed.spawn_rate,
            user_rps=parsed.user_rps,
            durations=durations,
            target_service=parsed.target_service,
            workers=parsed.workers,
        ),
        deploy=_deploy_policy(deploy=parsed.deploy, no_deploy=parsed.no_deploy),
        out=parsed.out,
        render=parsed.render,
    )


def stated(options: Options, stamp: datetime, seconds: float, argv: list[str]) -> ComparisonMeta:
    """How the comparison ran, with the machine and the deployments, for the summary."""
    load, d = options.load, options.load.durations
    return ComparisonMeta(
        mode="short" if options.short else "full",
        started_at=stamp.isoformat(timespec="seconds"),
        duration=f"{seconds:.0f} s",
        gateways=", ".join(f"{g.name} {g.url}" for g in options.gateways),
        load=f"{load.users} users, spawn rate {load.spawn_rate}/s, "
        f"{load.user_rps} requests/s per user (0: unpaced), GET /data",
        load_generator=load_generator(load.workers),
        phases=f"steady {d.steady_s:g} s; failure scenarios: warm-up {d.warmup_s:g} s, down "
        f"{d.fault_s:g} s, recovery {d.recovery_s:g} s; failed service: {load.target_service}",
        rerun=f"{PROG} " + " ".join(argv),
        context={**machine(), **deployments(options.gateways)},
    )


def main(argv: list[str] | None = None) -> int:
    try:
        options = arguments(argv)
    except GatewayFileError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    if options.render:
        # Summary and charts again from a finished comparison (e.g. after changing the summary).
        summary = write_report(options.render, Comparison.load(options.render))
        print(f"summary: {summary}")
        return 0
    started = time.monotonic()
    stamp = datetime.now(UTC)
    out = options.out or run_folder(RESULTS_ROOT / "loadtest", stamp)
    out.mkdir(parents=True, exist_ok=True)
    problems = {g.name: ensure_deployed(g, options.deploy) for g in options.gateways}
    for name, problem in problems.items():
        if problem:
            print(f"{name}: {problem}", file=sys.stderr)
    results = run_all(options.load, options.gateways, options.scenarios, problems, out)
    argv_given = argv if argv is not None else sys.argv[1:]
    meta = stated(options, stamp, time.monotonic() - started, argv_given)
    comparison = Comparison(results, meta)
    comparison.save(out)
    summary = write_report(out, comparison)
    print(f"summary: {summary} ({meta.duration}; load from {meta.load_generator})")
    missing = missing_results(results)
    for line in missing:
        print(f"missing: {line}", file=sys.stderr)
    return 1 if missing else 0
