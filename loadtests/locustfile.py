"""Load scenarios for the gateway (ours on :8000 or nginx on :8080), run with `locust -f loadtests`.

Every response to `GET /data` is checked (200 and a body naming its `instance`) and counted per
storage instance. `--scenario` picks steady load, one storage service killed or made unavailable
mid-run, or all of them down for a while; a load shape runs the phases and ends the run by itself.

Runs the same with locust's local runner or distributed (`--processes N`, `--master`/`--worker`):
the run, its faults and its figures are on the master or local process; workers only send the
responses they saw (`loadcompare.distributed`).

Only this file is here: `locust -f loadtests` imports every module of the folder whose name does
not start with `_`, so the code it uses lives in the `loadcompare` package.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

# Locust imports this file by path, not as part of a package: the repository must be on the path
# for `loadcompare` to be importable, whatever the directory locust was started from.
_REPO = str(Path(__file__).resolve().parent.parent)
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from locust import FastHttpUser, LoadTestShape, events, task  # noqa: E402
from locust.env import Environment  # noqa: E402
from locust.runners import MasterRunner, WorkerRunner  # noqa: E402

from loadcompare import distributed  # noqa: E402
from loadcompare.figures import build, share_table  # noqa: E402
from loadcompare.options import add_options, settings_from  # noqa: E402
from loadcompare.plan import total_s  # noqa: E402
from loadcompare.results import RunResult  # noqa: E402
from loadcompare.run import Run  # noqa: E402
from toolkit.faults import FaultError  # noqa: E402

log = logging.getLogger("loadtests")

# The run in progress in this process; replaced at every test start (the web UI can run several).
_current: list[Run] = []
_results: list[RunResult] = []


def current_run() -> Run | None:
    return _current[0] if _current else None


def _add_options(parser: Any, **_kwargs: Any) -> None:
    add_options(parser)


def _check_options(environment: Environment, **_kwargs: Any) -> None:
    try:
        settings_from(environment.parsed_options)
    except ValueError as error:
        sys.stderr.write(f"error: {error}\n")
        sys.exit(2)


def _on_test_start(environment: Environment, **_kwargs: Any) -> None:
    distributed.on_test_start(environment)
    if isinstance(environment.runner, WorkerRunner):
        return  # the run, its faults and its figures live on the master
    run = Run(settings_from(environment.parsed_options), environment.host or "")
    _current[:] = [run]
    try:
        run.prepare()
    except FaultError as error:
        run.error = str(error)
        log.error("%s", error)
        return  # the shape sees the error and ends the run at once
    run.start()


def _on_test_stop(environment: Environment, **_kwargs: Any) -> None:
    run = current_run()
    if run is None or isinstance(environment.runner, WorkerRunner):
        return
    run.stop()
    workers, warnings = 0, []
    if isinstance(environment.runner, MasterRunner):
        collected = distributed.collect(environment.runner, run.started_wall)
        run.samples = collected.samples
        run.error = run.error or collected.error
        workers, warnings = collected.workers, collected.warnings
        for warning in warnings:
            log.warning("%s", warning)
    options: Any = environment.parsed_options
    result = build(
        run, environment.stats.total, options.num_users, options.spawn_rate, workers, warnings
    )
    _results[:] = [result]
    print(share_table(result))
    for key, figures in (
        ("failover", result.failover),
        ("outage", result.outage),
        ("gateway_view", result.gateway_view),
    ):
        if figures is not None:
            print(f"{key}: {json.dumps(asdict(figures))}")
    for violation in result.violations:
        print(f"threshold exceeded: {violation}")
    if run.settings.stats_json:
        result.write(Path(run.settings.stats_json))
    # A later test start (web UI) must not see this run's state in the shape's first tick.
    _current.clear()


def _set_exit_code(environment: Environment, **_kwargs: Any) -> None:
    if not _results:
        return
    result = _results[0]
    if result.error:
        log.error("run failed: %s", result.error)
        environment.process_exit_code = 2
    elif result.violations:
        environment.process_exit_code = 1
    else:
        # Failed requests are the point of the failure scenarios; they are reported, not fatal.
        environment.process_exit_code = 0


class GatewayUser(FastHttpUser):
    """Asks the gateway for data at a steady pace and checks every answer."""

    def wait_time(self) -> float:
        rps = float(self.environment.parsed_options.user_rps)
        if rps <= 0:
            return 0.0
        # Pace from the previous start, not the previous end, so slow answers do not lower the load.
        now = time.monotonic()
        self._next_at = max(getattr(self, "_next_at", now) + 1.0 / rps, now)
        return self._next_at - now

    @task
    def get_data(self) -> None:
        with self.client.get("/data", name="/data", catch_response=True) as response:
            status = response.status_code or 0
            instance: str | None = None
            try:
                body = response.json()
                if isinstance(body, dict) and isinstance(body.get("instance"), str):
                    instance = body["instance"]
            except (ValueError, TypeError):
                pass
            ok = status == 200 and instance is not None
            if status == 0:
                response.failure(f"no response: {response.error!r}")
            elif status != 200:
                response.failure(f"status {status}")
            elif instance is None:
                response.failure("body without `instance`")
            else:
                response.success()
            latency_ms = float(response.request_meta["response_time"])
            recorder = current_run() or distributed.worker_buffer()
            if recorder is not None:
                recorder.record(latency_ms, status, instance, ok)


class ScenarioShape(LoadTestShape):
    """Holds -u users (spawned at -r per second) through the scenario's phases, then stops."""

    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        run = current_run()
        elapsed = time.perf_counter() - self.start_time
        if run is not None and (run.error is not None or elapsed >= total_s(run.plan)):
            return None
        if run is None and elapsed >= 60 * 60:
            return None
        options = self.runner.environment.parsed_options if self.runner else None
        users = int(options.num_users) if options else 20
        rate = float(options.spawn_rate) if options else 20.0
        return users, rate


# Registered by call through Any: locust's add_listener is untyped, and as a decorator it would make
# every listener untyped for mypy --strict.
_events: Any = events
_events.init_command_line_parser.add_listener(_add_options)
_events.init.add_listener(_check_options)
_events.init.add_listener(distributed.register)
_events.test_start.add_listener(_on_test_start)
_events.test_stop.add_listener(_on_test_stop)
_events.quitting.add_listener(_set_exit_code)
_events.report_to_master.add_listener(distributed.on_report_to_master)
_events.worker_report.add_listener(distributed.on_worker_report)
