"""The scaling scenario, run against one deployed stack under steady load.

Steps: a steady phase on 3 replicas (requests per replica), scale 3 -> 5, scale 5 -> 2, a rolling
update (`docker service update --force`, start-first), and one task killed (`docker kill`; the
restart policy replaces it). After each step every replica that is new since the step began must
serve; how long that took is measured from the moment swarm reported the task running (its
healthcheck had passed) to the first response it served through the gateway.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.swarm.control import Storage, Task
from tests.swarm.load import Load, Outcome
from toolkit.status import read_status
from toolkit.waiting import wait_until, wait_until_async

INITIAL_REPLICAS = 3
# Requests in the steady phase: enough to see the round robin's spread over 3 replicas.
STEADY_REQUESTS = 300
# Each docker step (scale, roll, kill) converges well within this on two busy cores.
STEP_TIMEOUT = 90.0
# The load stops by itself after this long, whatever happens to the scenario.
LOAD_MAX_SECONDS = 240.0


@dataclass
class Step:
    name: str
    started: float
    """Wall-clock time the step began."""
    ended: float
    seconds: float
    """From issuing the docker command to every new replica served (or given up on)."""
    new_replicas: dict[str, float | None]
    """Each replica new in this step -> seconds from running to first served; None: not served
    within the scenario's wait."""


@dataclass
class ScenarioResult:
    gateway: str
    serve_wait: float
    """How long the scenario waited for a new replica to serve before recording it as not served."""
    steps: list[Step] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    steady: Counter[str] = field(default_factory=Counter)
    """Requests per replica in the steady phase on 3 replicas."""
    reloads: int | None = None
    """nginx reloads done by its re-resolution loop (None for our gateway)."""

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def failed_during(self, step: Step) -> int:
        return sum(step.started <= o.at < step.ended for o in self.failed)

    def times_to_serve(self) -> list[float | None]:
        return [t for step in self.steps for t in step.new_replicas.values()]

    @property
    def max_time_to_serve(self) -> float | None:
        served = [t for t in self.times_to_serve() if t is not None]
        return max(served) if served else None

    @property
    def never_served(self) -> int:
        return sum(t is None for t in self.times_to_serve())


async def run_scenario(
    gateway: str, url: str, storage: Storage, serve_wait: float
) -> ScenarioResult:
    """Run every step under load; the load is stopped and awaited whatever happens."""
    result = ScenarioResult(gateway=gateway, serve_wait=serve_wait)
    await _until_available(url, INITIAL_REPLICAS)
    load = Load(url, max_seconds=LOAD_MAX_SECONDS)
    runner = asyncio.create_task(load.run())
    try:
        initial = await asyncio.to_thread(storage.running)
        await _until_served(load, initial, serve_wait)
        result.steady = await _steady(load, STEADY_REQUESTS)

        async def step(name: str, action: Callable[[], object]) -> None:
            result.steps.append(await _step(load, storage, name, action, serve_wait))

        await step("scale 3 -> 5", lambda: storage.scale(5, STEP_TIMEOUT))
        await step("scale 5 -> 2", lambda: storage.scale(2, STEP_TIMEOUT))
        await step("rolling update", lambda: storage.roll(2, STEP_TIMEOUT))
        await step("one task killed", lambda: storage.kill_one(2, STEP_TIMEOUT))
    finally:
        load.stop()
        await runner
        result.outcomes = load.outcomes
    return result


async def _steady(load: Load, requests: int) -> Counter[str]:
    """Requests per replica over the next `requests` answers."""
    start = time.time()
    target = len(load.outcomes) + requests
    await wait_until_async(
        lambda: len(load.outcomes) >= target,
        timeout=STEP_TIMEOUT,
        interval=0.1,
        what=f"{requests} answers to the load",
    )
    return load.served_between(start, time.time())


async def _step(
    load: Load, storage: Storage, name: str, action: Callable[[], object], serve_wait: float
) -> Step:
    started, wall_start = time.monotonic(), time.time()
    before = set(await asyncio.to_thread(storage.running))
    await asyncio.to_thread(action)
    new = {i: t for i, t in (await asyncio.to_thread(storage.running)).items() if i not in before}
    await _until_served(load, new, serve_wait)
    first = load.first_served()
    times = {
        i: (round(first[i] - task.running_since, 2) if i in first else None)
        for i, task in new.items()
    }
    return Step(
        name=name,
        started=wall_start,
        ended=time.time(),
        seconds=round(time.monotonic() - started, 1),
        new_replicas=times,
    )


async def _until_served(load: Load, tasks: dict[str, Task], serve_wait: float) -> None:
    """Until each task has served a request, or `serve_wait` seconds after it started running."""
    while True:
        first = load.first_served()
        now = time.time()
        waiting = [
            t
            for t in tasks.values()
            if t.instance not in first and now < t.running_since + serve_wait
        ]
        if not waiting:
            return
        await asyncio.sleep(0.2)


async def _until_available(url: str, replicas: int) -> None:
    """Until /status calls `replicas` storage replicas available: the load starts on a gateway
    that has found and probed them all, so a failure in it is the steps' doing."""

    def shows_all() -> bool:
        status = read_status(url, timeout=5.0)
        return status is not None and status.available == replicas

    # In a thread: the status client blocks, and the event loop must not.
    await asyncio.to_thread(
        wait_until,
        shows_all,
        timeout=STEP_TIMEOUT,
        interval=0.5,
        what=f"{url}/status to show {replicas} available replicas",
    )
