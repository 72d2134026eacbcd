"""One process serving clients: an event loop, the listening socket(s), the connection guard.

`serve_forever` runs until SIGTERM or SIGINT, then shuts down the way `nginx -s quit` does: it
stops accepting, closes the connections waiting for a request, lets every request in flight
finish (its response carries `Connection: close`) within `shutdown_timeout`, drops whatever is
left after that, runs the app's shutdown, and returns. Whoever called it exits with status 0.
"""

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from gateway_service.connections import SWEEP_INTERVAL_SECONDS, ConnectionGuard
from gateway_service.http_server import ASGIApp, ServerContext
from gateway_service.logs import EventLog

# The kernel's accept queue per listening socket (bounded by net.core.somaxconn).
BACKLOG = 4096


class Periodic:
    """Calls `action` every `interval` seconds on the running loop until stopped."""

    def __init__(self, interval: float, action: Callable[[], Any]) -> None:
        self.interval = interval
        self.action = action
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._handle = asyncio.get_running_loop().call_later(self.interval, self._tick)

    def _tick(self) -> None:
        self.action()
        self.start()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


@contextlib.asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield


async def serve_forever(
    app: ASGIApp,
    sockets: list[socket.socket],
    guard: ConnectionGuard,
    log: EventLog,
    *,
    access_log: bool,
    shutdown_timeout: float,
    lifespan: AbstractAsyncContextManager[Any] | None = None,
    stop: asyncio.Event | None = None,
    on_serving: Callable[[], None] | None = None,
    on_connection: Callable[[], None] | None = None,
) -> None:
    """Serve `app` on `sockets` until SIGTERM/SIGINT (or `stop` is set), then shut down."""
    loop = asyncio.get_running_loop()
    stop = stop if stop is not None else asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        async with lifespan if lifespan is not None else _nothing():
            ctx = ServerContext(app, guard, log, access_log=access_log, on_connection=on_connection)
            servers = [
                await loop.create_server(ctx.connection, sock=sock, backlog=BACKLOG)
                for sock in sockets
            ]
            sweeper = Periodic(SWEEP_INTERVAL_SECONDS, guard.sweep)
            sweeper.start()
            if on_serving is not None:
                on_serving()
            try:
                await stop.wait()
            finally:
                for server in servers:
                    server.close()
                ctx.begin_shutdown()
                await _drain(guard, log, within=shutdown_timeout)
                sweeper.stop()
                log.event("worker_stopped", pid=os.getpid())
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


async def _drain(guard: ConnectionGuard, log: EventLog, *, within: float) -> None:
    """Wait until every connection is closed, at most `within` seconds; then drop the rest."""
    drained = asyncio.Event()
    guard.on_empty = drained.set
    if guard.open:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await drained.wait()
    left = list(guard.open)
    if left:
        log.event(
            "shutdown_timeout",
            level="warning",
            connections=len(left),
            detail=f"requests still in flight after {within:g} s were dropped",
        )
        for connection in left:
            connection.abort()
