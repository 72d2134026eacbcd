"""Locust's distributed mode (a master plus workers): the workers' responses reach the master's run.

A worker records every response into a buffer and attaches what it holds to each stats report
locust sends the master (`report_to_master`). At the end of a run the master asks every worker to
stop and send its last report at once, and waits for all of them before it computes the figures:
locust's own last reports would come only after the master's `test_stop`, too late to count.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import gevent.event
from locust.env import Environment
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

from loadcompare.analysis import Sample
from loadcompare.worker_reports import (
    FINAL_REQUEST,
    REPORT_KEY,
    Collector,
    SampleBuffer,
    WorkerReport,
)

log = logging.getLogger("loadtests")

# How long the master waits for the workers' last reports; a worker stops its users (killed at
# once: no --stop-timeout here) and sends one message, so seconds are plenty even when loaded.
FINAL_REPORT_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class Collected:
    """What the workers reported for one run, merged on the master."""

    samples: list[Sample]  # seconds since the master started the run, in time order
    workers: int
    error: str | None  # why the figures are incomplete; None when every worker reported
    warnings: list[str]


@dataclass(slots=True)
class _WorkerState:
    buffer: SampleBuffer | None = None  # None outside a run: nothing is recorded
    final_for: str | None = None  # the master's final request being answered, while answering


@dataclass(slots=True)
class _MasterState:
    collector: Collector | None = None
    request: str = ""
    waiting_for: list[str] = field(default_factory=list)
    done: gevent.event.Event = field(default_factory=gevent.event.Event)


_worker = _WorkerState()
_master = _MasterState()


def worker_buffer() -> SampleBuffer | None:
    """Where a worker's users record their responses; None on a master or a local runner."""
    return _worker.buffer


def register(environment: Environment, **_kwargs: Any) -> None:
    """Wires the runner in (locust's `init` event: the runner exists from then on)."""
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.register_message(FINAL_REQUEST, _answer_final_request)


def on_test_start(environment: Environment) -> None:
    """A new run: workers start recording, the master starts collecting."""
    if isinstance(environment.runner, WorkerRunner):
        _worker.buffer = SampleBuffer()
    elif isinstance(environment.runner, MasterRunner):
        _master.collector = Collector()


def on_report_to_master(client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
    """Worker: our samples ride along with locust's stats, so both cover the same requests."""
    final_for = _worker.final_for
    if _worker.buffer is not None:
        data[REPORT_KEY] = _worker.buffer.report(final_for).encode()
    elif final_for is not None:  # no run on this worker (it got no users), but the master waits
        data[REPORT_KEY] = WorkerReport((), time.time(), final_for).encode()
    if final_for is not None:
        _worker.buffer = None  # anything after the last report would be counted nowhere


def on_worker_report(client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
    """Master: one worker's report (periodic, or its last one)."""
    collector = _master.collector
    if collector is None or REPORT_KEY not in data:
        return
    try:
        report = WorkerReport.decode(data[REPORT_KEY])
    except ValueError as error:
        log.error("worker %s: %s; is it running this version of loadtests?", client_id, error)
        return
    collector.add(client_id, report, time.time())
    if _master.waiting_for and not collector.missing(_master.waiting_for, _master.request):
        _master.done.set()


def collect(runner: MasterRunner, started_wall: float) -> Collected:
    """Asks every connected worker for its last report and merges all reports of the run."""
    collector = _master.collector or Collector()
    asked = _connected(runner)
    _master.request = uuid4().hex
    _master.waiting_for = asked
    _master.done.clear()
    for worker in asked:
        runner.send_message(FINAL_REQUEST, {"request": _master.request}, client_id=worker)
    deadline = time.monotonic() + FINAL_REPORT_TIMEOUT_S
    # Until all answered, or those left have disconnected (Ctrl+C reaches the workers too).
    while collector.missing(set(asked) & set(_connected(runner)), _master.request):
        if time.monotonic() >= deadline:
            break
        _master.done.wait(0.25)
    missing = collector.missing(asked, _master.request)
    _master.waiting_for = []
    _master.collector = None  # reports arriving later belong to no run
    error = None
    if missing:
        error = (
            f"no last report from worker(s) {', '.join(missing)} (disconnected, or silent for "
            f"{FINAL_REPORT_TIMEOUT_S:g} s): the figures would be incomplete"
        )
    elif not asked:
        error = "no worker was connected at the end of the run"
    samples = collector.samples(started_wall)
    return Collected(samples, len(asked), error, collector.clock_warnings())


def _connected(runner: MasterRunner) -> list[str]:
    return sorted(c.id for c in runner.clients.all if c.state != STATE_MISSING)


def _answer_final_request(environment: Environment, msg: Any, **_kwargs: Any) -> None:
    """Worker: stop the users, then send a stats report carrying the last samples at once."""
    runner = environment.runner
    assert isinstance(runner, WorkerRunner)
    runner.stop()
    data: dict[str, Any] = {}
    _worker.final_for = str(msg.data["request"])
    try:
        # What locust's own periodic report does, now rather than up to 3 s later.
        events: Any = environment.events
        events.report_to_master.fire(client_id=runner.client_id, data=data)
    finally:
        _worker.final_for = None
    runner.send_message("stats", data)
