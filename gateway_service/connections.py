"""Client connections a worker holds: the cap on them, and the deadlines a stalled client meets.

A client that sends half a request and then nothing, or that stops reading its responses, holds
a connection, a file descriptor and the memory behind them for as long as the gateway lets it. A
few thousand such clients (slowloris) exhaust the open-file limit; from then on accept() fails and
nobody is served. nginx survives the same input with `client_header_timeout`,
`client_body_timeout`, `send_timeout` and by reclaiming idle connections when it runs out. The
gateway does the same, with one setting (`CLIENT_TIMEOUT`) and no timer per request:

- **Request deadline**: a request (head and body) must be complete within the timeout of the
  connection opening or of the previous response finishing. A connection stamps the time when it
  starts waiting for a request and clears the stamp when one is complete.
- **Send deadline**: a connection whose transport stopped taking writes (the client reads
  nothing and the buffers are full) stamps the time; reading anything clears it.
- One sweep a second closes the connections whose stamp is older than the timeout, so a stalled
  client is dropped between `CLIENT_TIMEOUT` and `CLIENT_TIMEOUT` + 1 s after its stamp.
- **Connection cap**: a connection arriving at the cap closes the one of its worker that has
  waited longest for a request (nginx likewise reuses its idle "reusable" connections), or is
  itself closed when none is waiting. Each worker has a cap of its own, from the open-file
  limit (a process's files are its own); `MAX_CONNECTIONS` caps the whole gateway on top,
  counted across workers on the shared board (`SharedCap`).
- **Memory back after a crowd leaves**: the event loop's per-connection structures come from
  the C allocator, which keeps freed memory for reuse; after thousands of connections closed,
  the sweep asks glibc to hand the free pages back (`malloc_trim`), so a burst of idle clients
  does not leave the worker that much bigger for good.
"""

import contextlib
import ctypes
import ctypes.util
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from gateway_service.clock import Clock
from gateway_service.logs import EventLog

# Descriptors that are not client or pooled upstream connections: stdio, the listening socket,
# the event loop's own descriptors, files opened by imports and logging, and one health probe
# per storage service when the pool has no idle connection to lend it.
RESERVE_FDS = 64
# The floor when the open-file limit is too small for the formula: a handful of clients must still
# be served, even at the risk of running out of files.
MIN_CONNECTIONS = 16
# What an unbounded open-file limit counts as.
UNBOUNDED_NOFILE = 1 << 20
# Once the cap was logged, it is logged again only after the count fell to this share of it,
# so a count hovering at the cap writes one line, not one per connection.
RELOG_BELOW_SHARE = 0.9
SWEEP_INTERVAL_SECONDS = 1.0
# Connections closed since the last peak that make a sweep return free memory to the system.
TRIM_AFTER_CLOSED = 1000


def _malloc_trim() -> "ctypes._NamedFuncPointer | None":
    """glibc's malloc_trim, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


MALLOC_TRIM = _malloc_trim()


def connection_cap(nofile: int, backends: int, idle_per_backend: int) -> int:
    """The most client connections that can be open without the process running out of files.

    A client connection may hold one upstream connection at a time (two descriptors), and each
    storage service's pool keeps up to `idle_per_backend` idle connections on top of that.
    """
    usable = nofile - RESERVE_FDS - idle_per_backend * backends
    return max(MIN_CONNECTIONS, usable // 2)


def raise_nofile_limit() -> int:
    """Raise the soft open-file limit to the hard one, as far as allowed; the resulting soft limit.

    Containers usually get a high hard limit and a low soft one (often 1024); the soft limit is
    what counts, and an unprivileged process may raise it up to the hard limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Linux bounds both by fs.nr_open; where the hard limit is unbounded (macOS), no soft limit
    # may be set to that, so aim at a large finite one.
    target = hard if hard != resource.RLIM_INFINITY else UNBOUNDED_NOFILE
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft if soft != resource.RLIM_INFINITY else UNBOUNDED_NOFILE


class Closable(Protocol):
    def close(self) -> None:
        """Close once what was written is sent."""

    def abort(self) -> None:
        """Close now, dropping whatever the client has not read."""


@dataclass(frozen=True)
class SharedCap:
    """`MAX_CONNECTIONS`: a cap on the connections every worker of the gateway holds together."""

    limit: int
    total: Callable[[], int]
    """The connections open in the whole gateway now."""
    publish: Callable[[int], None]
    """Tell the others how many this worker holds."""


class ConnectionGuard:
    """The deadlines and the cap, shared by every client connection of a worker.

    `waiting` maps each connection waiting for a request to the time it started waiting, and
    `stalled` each connection whose writes are paused to the time they paused. Connections keep
    both on their hot path with one dict operation per event. As a connection is always removed
    before it is added again, each dict's order is its stamps' order: the first entry has waited
    longest, and a sweep stops at the first entry that is not late.
    """

    def __init__(
        self,
        *,
        client_timeout: float,
        max_connections: int,
        log: EventLog,
        clock: Clock = time.monotonic,
        shared: SharedCap | None = None,
    ) -> None:
        self.client_timeout = client_timeout
        self.max_connections = max_connections  # this worker's, from its open-file limit
        self.shared = shared
        self.log = log
        self.clock = clock
        self.open: set[Closable] = set()
        self.waiting: dict[Closable, float] = {}
        self.stalled: dict[Closable, float] = {}
        # Called when the last open connection is forgotten (a graceful shutdown waits on it).
        self.on_empty: Callable[[], None] | None = None
        self._cap_logged = False
        cap = max_connections if shared is None else min(max_connections, shared.limit)
        self._relog_at = int(cap * RELOG_BELOW_SHARE)
        self.peak = 0  # most connections open at once since memory was last trimmed

    def admit(self, connection: Closable) -> bool:
        """Count a new connection and start its request deadline; False: no room, close it."""
        shared = self.shared
        cap = None
        if len(self.open) >= self.max_connections:
            cap = self.max_connections
        elif shared is not None and shared.total() >= shared.limit:
            cap = shared.limit
        if cap is not None:
            if not self._cap_logged:
                self._cap_logged = True
                self.log.event(
                    "connection_limit",
                    level="warning",
                    max_connections=cap,
                    detail="at the cap: a new connection closes the one waiting longest for a "
                    "request, or is closed itself when none is waiting",
                )
            if not self.waiting:
                return False
            self._drop(next(iter(self.waiting)), abort=False)
        self.open.add(connection)
        self.waiting[connection] = self.clock()
        if len(self.open) > self.peak:
            self.peak = len(self.open)
        if shared is not None:
            shared.publish(len(self.open))
        return True

    def forget(self, connection: Closable) -> None:
        """The connection is gone (closed by either side)."""
        self.open.discard(connection)
        if self.shared is not None:
            self.shared.publish(len(self.open))
        self.waiting.pop(connection, None)
        self.stalled.pop(connection, None)
        if self._cap_logged and len(self.open) <= self._relog_at:
            self._cap_logged = False
        if not self.open and self.on_empty is not None:
            self.on_empty()

    def sweep(self) -> int:
        """Close every connection whose request or send deadline passed; how many were closed."""
        cutoff = self.clock() - self.client_timeout
        late = _older_than(self.waiting, cutoff)
        stuck = _older_than(self.stalled, cutoff)
        for connection in late:
            self._drop(connection, abort=False)
        for connection in stuck:
            self._drop(connection, abort=True)
        if self.peak - len(self.open) >= TRIM_AFTER_CLOSED:
            self.peak = len(self.open)
            if MALLOC_TRIM is not None:
                MALLOC_TRIM(0)
        return len(late) + len(stuck)

    def _drop(self, connection: Closable, *, abort: bool) -> None:
        # Forgotten now rather than when the transport reports the loss, so the count is right
        # for the connection being admitted in the same call.
        self.forget(connection)
        if abort:
            connection.abort()
        else:
            connection.close()


def _older_than(stamps: dict[Closable, float], cutoff: float) -> list[Closable]:
    found = []
    for connection, since in stamps.items():
        if since > cutoff:
            break
        found.append(connection)
    return found
