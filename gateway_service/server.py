"""Serving the gateway: uvicorn, plus a deadline for request heads and a cap on client connections.

uvicorn alone has no deadline for receiving a request head: its keep-alive timer is cancelled by
the first byte, so a client that sends half a head and then nothing holds a connection, and a
file descriptor, for ever. A few thousand such clients (slowloris) exhaust the open-file limit;
from then on accept() fails and nobody is served, with nothing in the log. nginx survives the
same input through `client_header_timeout` and by reclaiming idle connections when it runs out.
This module does the same for uvicorn's httptools protocol:

- **Head deadline** (`CLIENT_TIMEOUT`): a request head must be complete within the timeout of the
  connection opening or of the previous response finishing. A connection stamps the time when it
  starts waiting for a head and clears the stamp when the head is complete; no timer is armed per
  request. One sweep a second (on uvicorn's own main-loop tick) closes the connections whose
  stamp is older than the timeout, so a late connection is closed between `CLIENT_TIMEOUT` and
  `CLIENT_TIMEOUT` + 1 s after its stamp.
- **Connection cap** (`MAX_CONNECTIONS`, derived from `RLIMIT_NOFILE` when unset): a connection
  arriving at the cap closes the one that has waited longest for a request head (nginx likewise
  reuses its idle "reusable" connections), or is itself closed when none is waiting.

`serve()` raises the soft open-file limit to the hard one, derives the cap, and runs uvicorn with
both; `python -m gateway_service` (`__main__.py`) is its command line.
"""

import asyncio
import contextlib
import resource
import sys
import time
from typing import Any, ClassVar, Protocol

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway_service import upstream
from gateway_service.app import Gateway
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
# uvicorn's main loop ticks every 0.1 s; every tenth tick sweeps, so about once a second.
SWEEP_EVERY_TICKS = 10
GRACEFUL_SHUTDOWN_SECONDS = 10


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
    def close(self) -> None: ...


class ConnectionGuard:
    """The head deadline and the connection cap, shared by every client connection of a server.

    `waiting` maps each connection waiting for a request head to the time it started waiting.
    The protocol keeps it on its hot path with one dict operation per event: a connection that
    starts waiting (opened, or its response finished) is added with `clock()`, one whose head is
    complete is popped. As a connection is always popped before it is added again, the dict's
    order is the stamps' order: the first entry has waited longest, and a sweep stops at the
    first entry that is not late.
    """

    def __init__(
        self,
        *,
        client_timeout: float,
        max_connections: int,
        log: EventLog,
        clock: Clock = time.monotonic,
    ) -> None:
        self.client_timeout = client_timeout
        self.max_connections = max_connections
        self.log = log
        self.clock = clock
        self.open: set[Closable] = set()
        self.waiting: dict[Closable, float] = {}
        self._cap_logged = False
        self._relog_at = int(max_connections * RELOG_BELOW_SHARE)

    def admit(self, connection: Closable) -> bool:
        """Count a new connection and start its head deadline; False: no room, close it."""
        if len(self.open) >= self.max_connections:
            if not self._cap_logged:
                self._cap_logged = True
                self.log.event(
                    "connection_limit",
                    level="warning",
                    max_connections=self.max_connections,
                    detail="at the cap: a new connection closes the one waiting longest for a "
                    "request head, or is closed itself when none is waiting",
                )
            if not self.waiting:
                return False
            self._close(next(iter(self.waiting)))
        self.open.add(connection)
        self.waiting[connection] = self.clock()
        return True

    def forget(self, connection: Closable) -> None:
        """The connection is gone (closed by either side)."""
        self.open.discard(connection)
        self.waiting.pop(connection, None)
        if self._cap_logged and len(self.open) <= self._relog_at:
            self._cap_logged = False

    def sweep(self) -> int:
        """Close every connection whose head is late; how many were closed."""
        cutoff = self.clock() - self.client_timeout
        late = []
        for connection, since in self.waiting.items():
            if since > cutoff:
                break
            late.append(connection)
        for connection in late:
            self._close(connection)
        return len(late)

    def _close(self, connection: Closable) -> None:
        # Forgotten now rather than when the transport reports the loss, so the count is right
        # for the connection being admitted in the same call.
        self.forget(connection)
        connection.close()


class HeadWithBody:
    """A response's transport that sends the head together with the first body write.

    uvicorn writes a response's head and its body in two `transport.write` calls, and uvloop
    sends each at once: two system calls per response where one does, the dearest part of a
    small proxied response. The head is held until the body's first write (in the same step of
    the event loop for every response this gateway sends), and flushed on the next loop
    iteration in any case, so a response whose body comes later still gets its head at once.
    """

    __slots__ = ("_head", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = b""  # b"": nothing written yet; None: the head went out

    def write(self, data: bytes) -> None:
        head = self._head
        if head is None:
            self._transport.write(data)
        elif head:
            self._head = None
            self._transport.write(head + data)
        else:
            self._head = data
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        head = self._head
        if head:
            self._head = None
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, reporting to a ConnectionGuard (see `protocol_class`)."""

    guard: ClassVar[ConnectionGuard]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per request, two dict operations and a clock read; no timer is armed.
        self._waiting = self.guard.waiting
        self._clock = self.guard.clock

    def close(self) -> None:
        self.transport.close()

    def connection_made(  # type: ignore[override]
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(transport)
        if not self.guard.admit(self):
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.forget(self)
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._waiting.pop(self, None)
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.transport is self.transport:
            cycle.transport = HeadWithBody(self.transport, self.loop)  # type: ignore[assignment]

    def on_response_complete(self) -> None:
        # A pipelined request already has its head; the base class starts it now.
        pipelined = bool(self.pipeline)
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            # Not in `waiting`: its head completed before this response began.
            self._waiting[self] = self._clock()


def protocol_class(guard: ConnectionGuard) -> type[GuardedHttpToolsProtocol]:
    """The protocol class to hand to `uvicorn.Config(http=...)`, bound to `guard`.

    uvicorn builds protocols from the class with a fixed set of arguments, so the guard travels
    as a class attribute of a subclass made for it.
    """

    class Bound(GuardedHttpToolsProtocol):
        pass

    Bound.guard = guard
    return Bound


class GatewayServer(uvicorn.Server):
    """uvicorn's server, sweeping late request heads while it runs."""

    def __init__(self, config: uvicorn.Config, guard: ConnectionGuard) -> None:
        super().__init__(config)
        self.guard = guard

    async def on_tick(self, counter: int) -> bool:
        if counter % SWEEP_EVERY_TICKS == 0:
            self.guard.sweep()
        return await super().on_tick(counter)


def build_server(gateway: Gateway, host: str, port: int) -> GatewayServer:
    """Raise the open-file limit, derive the cap, and configure uvicorn with both protections."""
    settings = gateway.settings
    nofile = raise_nofile_limit()
    cap = settings.max_connections or connection_cap(
        nofile, len(settings.storage_services), upstream.MAX_IDLE_PER_BACKEND
    )
    guard = ConnectionGuard(
        client_timeout=settings.client_timeout, max_connections=cap, log=gateway.log
    )
    gateway.log.event(
        "limits",
        nofile=nofile,
        max_connections=cap,
        max_connections_from="MAX_CONNECTIONS" if settings.max_connections else "nofile",
        client_timeout=settings.client_timeout,
    )
    config = uvicorn.Config(
        gateway,
        host=host,
        port=port,
        loop="uvloop",
        http=protocol_class(guard),
        # The gateway serves no WebSockets; an upgraded connection would leave the guard's count.
        ws="none",
        lifespan="on",
        access_log=False,  # the gateway writes its own access lines (ACCESS_LOG)
        # The gateway uses neither the client's address nor its scheme, so X-Forwarded-* from
        # whoever connects need no middleware on every request.
        proxy_headers=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    return GatewayServer(config, guard)


def serve(gateway: Gateway, host: str, port: int) -> None:
    """Run the gateway until SIGTERM or SIGINT; exit with uvicorn's status if it cannot start."""
    server = build_server(gateway, host, port)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
