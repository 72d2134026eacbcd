"""DNS discovery: every `STORAGE_SERVICES` name becomes one backend per address it resolves to.

Names are resolved again every `DISCOVERY_INTERVAL` seconds, as Envoy's STRICT_DNS clusters do,
so a storage service run as replicas behind one name (a Kubernetes headless Service, a swarm
service with `endpoint_mode: dnsrr`, `tasks.<service>`) is balanced per replica and follows
scaling and rolling updates. A name that fails to resolve keeps its last good addresses: a DNS
hiccup must not empty the rotation. Addresses are sorted, so the rotation order is stable.

`DISCOVERY_INTERVAL=0` turns discovery off: one backend per entry, and each new connection
resolves the name through the system, as the gateway did before it resolved names itself.
"""

import asyncio
import socket
from collections.abc import Awaitable, Callable, Sequence

from gateway_service.backends import Member
from gateway_service.logs import EventLog
from gateway_service.settings import StorageURL, is_ip_literal

# host, port -> the addresses it resolves to; raises OSError when it cannot be resolved.
Resolver = Callable[[str, int], Sequence[str]]
Sleep = Callable[[float], Awaitable[None]]
Apply = Callable[[list[Member]], None]


def system_resolver(host: str, port: int) -> Sequence[str]:
    """Every address the system resolver gives for `host` (A and AAAA, through /etc/hosts too)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in found]


class Discovery:
    """Keeps, per entry, the addresses its name last resolved to, and hands on every change."""

    def __init__(
        self,
        storages: Sequence[StorageURL],
        interval: float,
        log: EventLog,
        resolver: Resolver = system_resolver,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.storages = storages  # the admin API and SIGHUP replace them (gateway_service/admin.py)
        self.interval = interval
        self.log = log
        self.resolver = resolver
        self.sleep = sleep
        self._addresses: dict[str, tuple[str, ...]] = {}  # entry URL -> last good addresses
        self._failing: set[str] = set()  # entry URLs whose last resolution failed
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.interval > 0

    def members(self) -> list[Member]:
        """The backends to have now: every entry's last good addresses, entries in order."""
        if not self.enabled:
            return [(storage, storage.host) for storage in self.storages]
        return [
            (storage, address)
            for storage in self.storages
            for address in self._addresses.get(storage.url, ())
        ]

    def resolve_now(self) -> list[Member]:
        """Resolve every name once, blocking (at start-up, before anything is served)."""
        if self.enabled:
            for storage in self.storages:
                self._record(storage, self._lookup(storage))
        return self.members()

    async def refresh(self) -> list[Member]:
        """Resolve every name once, off the event loop; return the members."""
        await self.resolve(self.storages)
        return self.members()

    async def resolve(self, storages: Sequence[StorageURL]) -> None:
        """Resolve these entries' names once, off the event loop (entries about to be added)."""
        for storage in storages if self.enabled else ():
            self._record(storage, await asyncio.to_thread(self._lookup, storage))

    def start(self, apply: Apply) -> None:
        if self.enabled:
            self._task = asyncio.create_task(self._run(apply), name="discovery")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def poll(self, apply: Apply) -> None:
        """Resolve every name once and hand the members to `apply`, which compares them with the
        backend table (a restarted control process must not trust what it remembers). The
        members are those of the entries there are once resolved: the admin API may have
        changed them meanwhile."""
        await self.refresh()
        apply(self.members())

    async def _run(self, apply: Apply) -> None:
        while True:
            await self.sleep(self.interval)
            await self.poll(apply)

    def _lookup(self, storage: StorageURL) -> tuple[str, ...] | OSError:
        if is_ip_literal(storage.host):
            return (storage.host,)
        try:
            addresses = tuple(sorted(set(self.resolver(storage.host, storage.port))))
        except (OSError, UnicodeError) as error:  # UnicodeError: a name IDNA cannot encode
            return error if isinstance(error, OSError) else OSError(str(error))
        if not addresses:
            return OSError(f"{storage.host} resolved to no address")
        return addresses

    def _record(self, storage: StorageURL, found: tuple[str, ...] | OSError) -> None:
        url = storage.url
        if isinstance(found, OSError):
            if url not in self._failing:
                self._failing.add(url)
                kept = self._addresses.get(url, ())
                self.log.event(
                    "discovery_failed",
                    level="warning",
                    storage=url,
                    error=str(found),
                    kept=list(kept),
                )
            return
        if url in self._failing:
            self._failing.discard(url)
            self.log.event("discovery_recovered", storage=url)
        previous = self._addresses.get(url)
        if previous != found:
            self._addresses[url] = found
            self.log.event(
                "discovered",
                storage=url,
                addresses=list(found),
                added=sorted(set(found) - set(previous or ())),
                removed=sorted(set(previous or ()) - set(found)),
            )
