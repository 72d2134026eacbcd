"""One run of a scenario: records every response, drives faults at phase boundaries, undoes them.

Lives in the locust master/local process. The fault driver is a greenlet of its own so that the
actions happen on time whatever the shape's tick rate, and are undone however the run ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import gevent

from loadcompare.analysis import Sample
from loadcompare.faults import (
    Faults,
    docker_client,
    instance_name,
    project_publishing,
    storage_containers,
)
from loadcompare.options import Settings
from loadcompare.plan import Action, Phase, Scenario, phases
from loadcompare.results import Event
from toolkit.faults import FaultError
from toolkit.status import read_status

log = logging.getLogger("loadtests")

STATUS_POLL_S = 0.25
EVERY_SERVICE = (Scenario.ALL_DOWN, Scenario.BROWN_OUT)
"""The scenarios that fail every storage service at once, not one."""


class Run:
    def __init__(self, settings: Settings, host: str) -> None:
        self.settings = settings
        self.host = host
        self.plan: list[Phase] = phases(settings.scenario, settings.durations)
        self.samples: list[Sample] = []
        self.events: list[Event] = []
        self.error: str | None = None
        self.started_wall = time.time()
        self.project = ""
        self.target_instance: str | None = None
        self.expected_instances = 0
        self._t0 = time.perf_counter()
        self._faults: Faults | None = None
        self._services: list[str] = []
        self._received_at_fault: int | None = None
        self.storage_requests: int | None = None
        """Brown-out: the `/data` requests the storage services received between the fault and
        the recovery (their own counts); None for the other scenarios or when unreadable."""
        self._greenlets: list[gevent.Greenlet] = []

    def now(self) -> float:
        return time.perf_counter() - self._t0

    def record(self, latency_ms: float, status: int, instance: str | None, ok: bool) -> None:
        self.samples.append(Sample(self.now(), latency_ms, status, instance, ok))

    def mark(self, name: str, detail: str = "") -> None:
        self.events.append(Event(name, self.now(), detail))
        log.info("t=%.2fs %s %s", self.now(), name, detail)

    def event_time(self, name: str) -> float | None:
        return next((e.t for e in self.events if e.name == name), None)

    def prepare(self) -> None:
        """Find the deployment's containers before any load is sent; raises FaultError."""
        status = read_status(self.host)
        if status is not None:
            self.expected_instances = status.total
        if self.settings.scenario is Scenario.STEADY:
            return
        client = docker_client()
        port = urlsplit(self.host).port or 80
        self.project = self.settings.compose_project or project_publishing(client, port)
        containers = storage_containers(client, self.project)
        if self.settings.scenario in EVERY_SERVICE:
            self._services = list(containers)
        else:
            if self.settings.target_service not in containers:
                known = ", ".join(containers)
                raise FaultError(
                    f"--target-service {self.settings.target_service!r} is not a storage service "
                    f"of project {self.project!r} (known: {known})"
                )
            self._services = [self.settings.target_service]
            self.target_instance = instance_name(containers[self.settings.target_service])
        not_running = [s for s in self._services if containers[s].status != "running"]
        if not_running:
            raise FaultError(f"not running before the run: {', '.join(not_running)}")
        self._faults = Faults(containers)
        if self.settings.scenario is not Scenario.FAILOVER_KILL:
            for service in self._services:  # refuse before any load rather than mid-run
                self._faults.check_fault_injection(service)
        self.expected_instances = max(self.expected_instances, len(containers))

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self.started_wall = time.time()
        if self._faults is not None:
            self._greenlets.append(gevent.spawn(self._drive))
            if self.settings.scenario not in EVERY_SERVICE:
                self._greenlets.append(gevent.spawn(self._poll_status))

    def stop(self) -> None:
        for greenlet in self._greenlets:
            greenlet.kill(block=True)
        self._greenlets.clear()
        if self._faults is not None and self._faults.active:
            try:
                self._faults.undo()
                self.mark("undone at stop")
            except FaultError as error:
                self.error = str(error)
                log.error("%s", error)

    def _drive(self) -> None:
        for phase in self.plan:
            gevent.sleep(max(0.0, phase.start_s - self.now()))
            try:
                self._act(phase.action)
            except FaultError as error:
                self.error = str(error)
                log.error("%s", error)
                return

    def _act(self, action: Action) -> None:
        assert self._faults is not None
        if action is Action.FAIL:
            self.mark("fault begins", ", ".join(self._services))
            self._on_each(self._fail)
            self.mark("fault", ", ".join(self._services))
            if self.settings.scenario is Scenario.BROWN_OUT:
                self._received_at_fault = self._received()
        elif action is Action.RECOVER:
            if self._received_at_fault is not None:
                self.storage_requests = self._received() - self._received_at_fault
            self.mark("recovery begins", ", ".join(self._services))
            self._on_each(self._faults.restore)
            self.mark("recovered", ", ".join(self._services))

    def _on_each(self, act: Callable[[str], None]) -> None:
        """Acts on every service at once (all-down fails them together); raises the first error."""

        def attempt(service: str) -> str | None:
            try:
                act(service)
            except FaultError as error:
                return str(error)  # returned, not raised: gevent would print a traceback
            return None

        jobs = [gevent.spawn(attempt, service) for service in self._services]
        gevent.joinall(jobs)
        errors = [job.value for job in jobs if job.value]
        if errors:
            raise FaultError(errors[0])

    def _received(self) -> int:
        """The `/data` requests every storage service has received so far, summed."""
        assert self._faults is not None
        return sum(self._faults.received(service) for service in self._services)

    def _fail(self, service: str) -> None:
        assert self._faults is not None
        if self.settings.scenario is Scenario.FAILOVER_KILL:
            self._faults.kill(service)
        elif self.settings.scenario is Scenario.BROWN_OUT:
            self._faults.brown_out(service)
        else:
            self._faults.make_unavailable(service)

    def _poll_status(self) -> None:
        """Records when the gateway itself says the target changed state."""
        service = self.settings.target_service
        last: str | None = None
        while True:
            status = read_status(self.host)
            entry = status.service(service) if status is not None else None
            current = entry.status if entry is not None else None
            if current is not None and current != last:
                self.mark(f"gateway says {current}", service)
                last = current
            gevent.sleep(STATUS_POLL_S)
