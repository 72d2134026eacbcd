"""Steady client load for the scenarios that change something under it (issue 19).

A few client threads, each with its own connection, send `GET /data` back to back until told to
stop; every request is recorded with when it was sent, so a scenario can tell the requests sent
after a moment (a drain call returning) from those sent before it. Bounded: the load stops by
itself after `limit` seconds whatever the scenario does.
"""

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType

import httpx

from toolkit.waiting import wait_until

LIMIT = 30.0
"""Seconds after which the load stops by itself."""


@dataclass(frozen=True)
class Sent:
    started: float
    """time.monotonic() when the client sent it."""
    status: int
    """The HTTP status, or 0 when no answer came (the error is in `error`)."""
    instance: str | None
    error: str = ""


@dataclass
class Load:
    base_url: str
    clients: int
    limit: float = LIMIT
    per_client: int | None = None
    """Requests each client sends before it stops by itself; None: until told to stop."""
    results: list[Sent] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> "Load":
        deadline = time.monotonic() + self.limit
        for _ in range(self.clients):
            thread = threading.Thread(target=self._client, args=(deadline,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.limit)

    def _client(self, deadline: float) -> None:
        sent = 0
        with httpx.Client(base_url=self.base_url, timeout=10.0) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                if self.per_client is not None and sent >= self.per_client:
                    return
                self._record(self._one(client))
                sent += 1

    def finish(self) -> list[Sent]:
        """Wait for every client to send its `per_client` requests (or the limit); the results."""
        for thread in self._threads:
            thread.join(timeout=self.limit)
        return self.snapshot()

    @staticmethod
    def _one(client: httpx.Client) -> Sent:
        started = time.monotonic()
        try:
            response = client.get("/data")
        except httpx.HTTPError as error:
            return Sent(started, 0, None, repr(error))
        instance = response.json().get("instance") if response.status_code == 200 else None
        return Sent(started, response.status_code, instance)

    def _record(self, sent: Sent) -> None:
        with self._lock:
            self.results.append(sent)

    def snapshot(self) -> list[Sent]:
        with self._lock:
            return list(self.results)

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        """Until `count` requests are answered (the load is under way)."""
        wait_until(
            lambda: len(self.snapshot()) >= count,
            timeout=timeout,
            interval=0.01,
            what=f"{count} answers under load",
        )

    def shares(self) -> Counter[str | None]:
        return Counter(s.instance for s in self.snapshot())

    def failed(self) -> list[Sent]:
        return [s for s in self.snapshot() if s.status != 200]
