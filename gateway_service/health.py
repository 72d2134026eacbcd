"""Active health checks: probe every storage service's /health on a schedule, even with no traffic.

Each service has its own loop. While probes disagree with the current state (a fall or a rise
is under way) the next probe comes after a quarter of the interval, HAProxy's `fastinter` idea,
so a dead service leaves rotation about one interval after it dies, and a recovered one returns
after about `rise` quarter-intervals past its first good probe.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable

from gateway_service.backends import Backend, Balancer
from gateway_service.clock import Clock
from gateway_service.upstream import UpstreamError
from gateway_service.upstream_protocol import Upstream

Sleep = Callable[[float], Awaitable[None]]


class HealthChecker:
    def __init__(
        self,
        balancer: Balancer,
        upstreams: dict[Backend, Upstream],
        interval: float,
        timeout: float,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.balancer = balancer
        self.upstreams = upstreams
        self.interval = interval
        self.timeout = timeout
        self.clock = clock
        self.wall_clock = wall_clock
        self.sleep = sleep
        self._tasks: dict[Backend, asyncio.Task[None]] = {}
        self._started = False

    async def probe(self, backend: Backend) -> bool:
        """Probe one backend once and record the result; True when it answered 200."""
        started = self.clock()
        request = b"GET /health HTTP/1.1\r\nhost: " + backend.host_header
        request += b"\r\nuser-agent: service-assembly-gateway-health\r\n\r\n"
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.upstreams[backend].request(
                    request, self.timeout, self.timeout
                )
            ok = response.status == 200
            if response.stream is not None:
                response.stream.close()  # a health answer that large is not read to its end
        except (UpstreamError, TimeoutError):
            ok = False
        finished = self.clock()
        self.balancer.record_probe(backend, ok, finished - started, finished, self.wall_clock())
        return ok

    def next_delay(self, backend: Backend) -> float:
        if self.balancer.settling(backend):
            return self.interval / 4
        return self.interval

    async def run(self, backend: Backend) -> None:
        """Probe `backend` forever on its schedule (until cancelled)."""
        while True:
            await self.probe(backend)
            await self.sleep(self.next_delay(backend))

    @property
    def enabled(self) -> bool:
        return self.interval > 0

    def start(self) -> None:
        self._started = True
        for backend in self.balancer.backends:
            self.watch(backend)

    def watch(self, backend: Backend) -> None:
        """Start probing `backend` now: a discovered one enters rotation on its first good probe.
        Before `start()`, nothing: start() watches every backend there is then."""
        if self._started and self.enabled and backend not in self._tasks:
            self._tasks[backend] = asyncio.create_task(
                self.run(backend), name=f"health {backend.label}"
            )

    def forget(self, backend: Backend) -> None:
        task = self._tasks.pop(backend, None)
        if task is not None:
            task.cancel()

    async def stop(self) -> None:
        self._started = False
        tasks = list(self._tasks.values())
        self._tasks = {}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
