"""The load tests' own command-line options; each has a LOCUST_* environment variable equivalent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loadcompare.plan import Durations, Scenario

DEFAULT_USERS = 20
DEFAULT_SPAWN_RATE = 20.0


@dataclass(frozen=True, slots=True)
class Settings:
    scenario: Scenario
    target_service: str
    compose_project: str  # "" means: the project of the container publishing --host's port
    durations: Durations
    user_rps: float
    max_fail_ratio: float
    max_p95_ms: float
    max_p99_ms: float
    stats_json: str


def add_options(parser: Any) -> None:
    """Register the options on locust's (configargparse) parser, and saner defaults for -u/-r."""
    group = parser.add_argument_group("service_assembly load tests")
    group.add_argument(
        "--scenario",
        choices=[s.value for s in Scenario],
        default=Scenario.STEADY.value,
        env_var="LOCUST_SCENARIO",
        help="steady load, one storage service killed or made unavailable, or all of them down",
    )
    group.add_argument(
        "--target-service",
        default="storage2",
        env_var="LOCUST_TARGET_SERVICE",
        help="compose service that the failover scenarios make fail",
    )
    group.add_argument(
        "--compose-project",
        default="",
        env_var="LOCUST_COMPOSE_PROJECT",
        help="compose project of the deployment (default: the one publishing --host's port)",
    )
    group.add_argument(
        "--steady-seconds",
        type=float,
        default=None,
        env_var="LOCUST_STEADY_SECONDS",
        help="length of the steady scenario (default: --run-time, else 60)",
    )
    group.add_argument(
        "--warmup-seconds", type=float, default=15.0, env_var="LOCUST_WARMUP_SECONDS"
    )
    group.add_argument(
        "--fault-seconds",
        type=float,
        default=20.0,
        env_var="LOCUST_FAULT_SECONDS",
        help="how long the failed service(s) stay down",
    )
    group.add_argument(
        "--recovery-seconds",
        type=float,
        default=25.0,
        env_var="LOCUST_RECOVERY_SECONDS",
        help="how long the run goes on after the service(s) came back",
    )
    group.add_argument(
        "--user-rps",
        type=float,
        default=10.0,
        env_var="LOCUST_USER_RPS",
        help="requests per second per user (0: as fast as possible)",
    )
    group.add_argument(
        "--max-fail-ratio", type=float, default=0.01, env_var="LOCUST_MAX_FAIL_RATIO"
    )
    group.add_argument("--max-p95-ms", type=float, default=500.0, env_var="LOCUST_MAX_P95_MS")
    group.add_argument("--max-p99-ms", type=float, default=1000.0, env_var="LOCUST_MAX_P99_MS")
    group.add_argument(
        "--stats-json",
        default="",
        env_var="LOCUST_STATS_JSON",
        help="write this run's figures (share, failover, timeline) to this JSON file",
    )
    # Headless locust would otherwise default to a single user, which says nothing about balancing.
    parser.set_defaults(num_users=DEFAULT_USERS, spawn_rate=DEFAULT_SPAWN_RATE)


def settings_from(options: Any) -> Settings:
    """Typed settings from locust's parsed options; refuses nonsense with a one-line message."""
    steady = options.steady_seconds or options.run_time or 60.0
    durations = Durations(
        steady_s=float(steady),
        warmup_s=options.warmup_seconds,
        fault_s=options.fault_seconds,
        recovery_s=options.recovery_seconds,
    )
    for name, value in (
        ("--steady-seconds", durations.steady_s),
        ("--warmup-seconds", durations.warmup_s),
        ("--fault-seconds", durations.fault_s),
        ("--recovery-seconds", durations.recovery_s),
    ):
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")
    if options.user_rps < 0:
        raise ValueError(f"--user-rps must be 0 or positive, got {options.user_rps}")
    if not 0 <= options.max_fail_ratio <= 1:
        raise ValueError(f"--max-fail-ratio must be within 0..1, got {options.max_fail_ratio}")
    return Settings(
        scenario=Scenario(options.scenario),
        target_service=options.target_service,
        compose_project=options.compose_project,
        durations=durations,
        user_rps=options.user_rps,
        max_fail_ratio=options.max_fail_ratio,
        max_p95_ms=options.max_p95_ms,
        max_p99_ms=options.max_p99_ms,
        stats_json=options.stats_json,
    )
