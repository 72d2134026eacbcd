"""A steady, bounded load on one gateway that records which storage replica served each request.

A few async workers send `GET /data` back to back (each paced a little, so the load stays well
under what two shared cores can serve) until told to stop or until their own deadline, whichever
comes first: the load never outlives the scenario. The storage service names itself in the body
(`{"instance": ...}`, storage_service/dataset.py), so every answer says which replica served it.
"""

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx


@dataclass(frozen=True, slots=True)
class Outcome:
    at: float
    """Wall-clock time (time.time()) the answer, or the error, arrived."""
    status: int
    """HTTP status; 0 when no response came (a transport error)."""
    instance: str | None
    """The storage replica that served it, from the body."""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.instance is not None


@dataclass
class Load:
    base_url: str
    workers: int = 4
    pace: float = 0.02
    """Seconds each worker waits between its requests: the load's rate, not a wait on anything."""
    max_seconds: float = 300.0
    """Hard bound: the workers stop by themselves after this long."""
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        """Send requests until `stop()` or `max_seconds`; returns when every worker has finished."""
        deadline = time.monotonic() + self.max_seconds
        limits = httpx.Limits(max_connections=self.workers, max_keepalive_connections=self.workers)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10.0, limits=limits) as client:
            await asyncio.gather(*(self._worker(client, deadline) for _ in range(self.workers)))

    def stop(self) -> None:
        self._stop.set()

    async def _worker(self, client: httpx.AsyncClient, deadline: float) -> None:
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.outcomes.append(await _one(client))
            await asyncio.sleep(self.pace)

    # -- what the load saw ---------------------------------------------------------------------

    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def first_served(self) -> dict[str, float]:
        """Each replica -> when it first served a request."""
        first: dict[str, float] = {}
        for outcome in self.outcomes:
            if outcome.ok and outcome.instance is not None:
                first.setdefault(outcome.instance, outcome.at)
        return first

    def served_between(self, start: float, end: float) -> Counter[str]:
        """Requests per replica answered in [start, end)."""
        return Counter(
            o.instance
            for o in self.outcomes
            if o.ok and o.instance is not None and start <= o.at < end
        )


async def _one(client: httpx.AsyncClient) -> Outcome:
    try:
        response = await client.get("/data")
    except httpx.HTTPError as exc:
        return Outcome(at=time.time(), status=0, instance=None, error=type(exc).__name__)
    instance: str | None = None
    if response.status_code == 200:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("instance"), str):
            instance = body["instance"]
    error = None if instance is not None else response.text[:120]
    return Outcome(at=time.time(), status=response.status_code, instance=instance, error=error)
