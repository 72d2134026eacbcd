"""Gateway application. Start it with `python -m gateway_service` (see __main__.py and server.py).

`create_app(settings)` builds the ASGI app from explicit settings; the module attribute `app`
builds it from the environment on first access, so importing this module never reads it. Any
ASGI server can serve it as one process (`uvicorn gateway_service.app:app`), but without the
client-side limits of gateway_service/http_server.py and without the workers.
"""

import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from starlette.routing import Route

from gateway_service import __version__
from gateway_service.backends import Backend, Balancer, Balancing, HealthPolicy, Member
from gateway_service.board import Board
from gateway_service.client_request import CLOSE, request_problem
from gateway_service.clock import Clock
from gateway_service.discovery import Discovery, Resolver, system_resolver
from gateway_service.health import HealthChecker
from gateway_service.limits import headers_too_large
from gateway_service.logs import EventLog, log_request
from gateway_service.metrics import GatewayCollector, ProxyStats, render
from gateway_service.openapi import DATA_PATH
from gateway_service.otel import SpanExporter
from gateway_service.proxy import TOO_LARGE, Message, Proxy, Receive, Scope, Send
from gateway_service.request_id import HEADER as REQUEST_ID
from gateway_service.request_id import accept_or_generate
from gateway_service.responses import send_json
from gateway_service.retry_budget import RetryBudget
from gateway_service.settings import GatewaySettings, SettingsError, load_settings
from gateway_service.status import status_document
from gateway_service.upstream import ConnectionPool
from gateway_service.upstream_protocol import Upstream

NOW_ONLY = "no-store"
"""/health and /status describe this moment: no cache may keep or reuse them (without it a
cache may assign them a freshness of its own, as httplint warns)."""

UpstreamFactory = Callable[[Backend], Upstream]


class Gateway:
    """The ASGI app: `/data` goes straight to the proxy; everything else to a FastAPI app.

    On its own (tests, another ASGI server) one Gateway is the whole gateway. Under
    the supervisor (gateway_service/supervisor.py) every process builds one on the shared
    `board`: the workers serve and leave the checks to the control process, whose Gateway
    (`runs_checks`) probes, discovers and writes the backend table, and serves nobody.
    """

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        board: Board | None = None,
        runs_checks: bool = True,
        upstream_factory: UpstreamFactory | None = None,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        log: EventLog | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.settings = settings
        self.log = log if log is not None else EventLog(fmt=settings.log_format)
        self.clock = clock
        self.board = board if board is not None else Board()
        self.runs_checks = runs_checks
        self.discovery = Discovery(
            settings.storage_services, settings.discovery_interval, self.log, resolver
        )
        self.balancer = Balancer(
            self.board,
            settings.storage_services,
            HealthPolicy(
                max_fails=settings.max_fails,
                fail_timeout=settings.fail_timeout,
                rise=settings.health_rise,
                fall=settings.health_fall,
                max_ejection_percent=settings.max_ejection_percent,
            ),
            on_change=self._log_state_change,
            balancing=Balancing(
                least_request=settings.balancing == "least_request",
                slow_start=settings.slow_start,
                counts_in_flight=bool(settings.admin_port),
            ),
        )
        self._upstream_factory = upstream_factory or self._pool
        # One pool per backend this process sees, shared with the proxy and the health checker;
        # the balancer reports every change of the table (`_membership_changed`).
        self.upstreams: dict[Backend, Upstream] = {}
        self.stats = ProxyStats(self.board)
        self.retry_budget = (
            RetryBudget(self.board, settings.retry_budget_percent, settings.retry_budget_min)
            if settings.retry_budget_percent < 100
            else None
        )
        endpoint = settings.otel_exporter_otlp_traces_endpoint
        self.exporter = (
            SpanExporter(endpoint, settings.otel_service_name, self.log)
            if endpoint and (board is None or not runs_checks)  # not the control process
            else None
        )
        self.proxy = Proxy(
            self.balancer,
            self.upstreams,
            self.stats,
            self.log,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            client_timeout=settings.client_timeout,
            retry_after=settings.retry_after,
            access_log=settings.access_log,
            clock=clock,
            retry_budget=self.retry_budget,
            exporter=self.exporter,
        )
        self.health = HealthChecker(
            self.balancer,
            self.upstreams,
            interval=settings.health_interval,
            timeout=settings.health_timeout,
            clock=clock,
            wall_clock=wall_clock,
        )
        self.balancer.on_membership = self._membership_changed
        if board is None:
            self.publish(self.discovery.resolve_now())
        self.balancer.backends  # noqa: B018 - reads the table, making a pool per backend
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(
            GatewayCollector(self.balancer, self.stats, clock, self.retry_budget)
        )
        self.api = self._build_api()

    def _pool(self, backend: Backend) -> Upstream:
        return ConnectionPool(
            backend.address, backend.storage.port, self.settings.response_buffer_bytes
        )

    def publish(self, members: list[Member]) -> None:
        """Write the first backend table: every member in rotation."""
        self.balancer.replace(members, on_probation=False)

    def follow(self, members: list[Member], *, rewrite: bool = False) -> None:
        """Make the backends `members`: discovery found another set of addresses. `rewrite`:
        write the table even if they are the same (weights or drains changed)."""
        current = [(backend.storage, backend.address) for backend in self.balancer.backends]
        if members == current and not rewrite:
            return
        added, removed = self.balancer.replace(
            members, on_probation=self.health.enabled, now=self.clock()
        )
        if not (added or removed):
            return
        self.log.event(
            "backends_changed",
            added=[backend.label for backend in added],
            removed=[backend.label for backend in removed],
            total=len(self.balancer.backends),
        )

    def _membership_changed(self, added: list[Backend], removed: list[Backend]) -> None:
        for backend in removed:
            self.health.forget(backend)
            # Idle connections close now; those carrying a request close when it is done.
            upstream = self.upstreams.pop(backend, None)
            if upstream is not None:
                upstream.close()
        for backend in added:
            self.upstreams[backend] = self._upstream_factory(backend)
            if self.runs_checks:
                self.health.watch(backend)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if scope["path"] == "/data" and scope["method"] in ("GET", "HEAD"):
                await self.proxy(scope, receive, send)
            else:
                await self._api_with_request_id(scope, receive, send)
            return
        await self.api(scope, receive, send)

    async def _api_with_request_id(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a non-proxied request, echoing X-Request-ID and logging it like the proxy."""
        started = time.perf_counter()
        client_id = next((v for k, v in scope["headers"] if k == REQUEST_ID), None)
        request_id = accept_or_generate(client_id)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID, request_id)]
            await send(message)

        try:
            if (problem := request_problem(scope)) is not None:
                await send_json(send_with_id, problem[0], {"detail": problem[1]}, [CLOSE])
            elif headers_too_large(scope["headers"]):
                await send_json(send_with_id, 431, TOO_LARGE, [])
            else:
                await self.api(scope, receive, send_with_id)
        finally:
            if self.settings.access_log:
                log_request(self.log, scope["method"], scope["path"], request_id, status, started)

    def _build_api(self) -> FastAPI:
        api = FastAPI(
            title="service_assembly gateway",
            version=__version__,
            lifespan=self._lifespan,
            description="Round-robin over storage services, with retries and health tracking.",
            # No slash redirects: their Location is built from the client's Host header, and
            # nginx's `location = /data` sends /data/ to its 404 like any unknown path.
            redirect_slashes=False,
        )

        @api.get("/health")
        async def health(response: Response) -> dict[str, str]:
            """The gateway's own liveness: 200 while it runs, whatever the storage services do."""
            response.headers["cache-control"] = NOW_ONLY
            return {"status": "ok", "version": __version__}

        @api.get("/status")
        async def status(response: Response) -> dict[str, Any]:
            """Every backend's state, how many are in rotation, and the settings in effect."""
            response.headers["cache-control"] = NOW_ONLY
            return status_document(self.balancer, self.clock(), self.settings, self.retry_budget)

        @api.get("/metrics", response_class=PlainTextResponse)
        async def metrics() -> Response:
            """Prometheus metrics."""
            return Response(render(self.registry), media_type=CONTENT_TYPE_LATEST)

        # Served by the proxy (Gateway.__call__ never hands GET or HEAD /data to this app); the
        # route is here so that other methods get FastAPI's 405.
        api.router.routes.append(Route("/data", self.proxy, methods=["GET", "HEAD"]))

        generate_openapi = api.openapi

        def openapi() -> dict[str, Any]:
            schema = generate_openapi()  # built once, then cached by FastAPI
            schema["paths"].setdefault("/data", DATA_PATH)
            return schema

        # Replacing the method is FastAPI's documented way to extend the schema.
        api.openapi = openapi  # type: ignore[method-assign]
        return api

    def running(self) -> AbstractAsyncContextManager[None]:
        """Health checks, discovery and pooled connections for as long as the block runs: the
        app's lifespan, for a server that runs it directly rather than through ASGI."""
        return self._lifespan(self.api)

    @asynccontextmanager
    async def _lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        settings = self.settings
        if self.runs_checks:
            self.log.event(
                "started",
                storage_services=[storage.url for storage in settings.storage_services],
                health_interval=settings.health_interval,
                discovery_interval=settings.discovery_interval,
                connect_timeout=settings.connect_timeout,
                read_timeout=settings.read_timeout,
            )
            self.health.start()
            self.discovery.start(self.follow)
        if self.exporter is not None:
            self.exporter.start()
        try:
            yield
        finally:
            if self.exporter is not None:
                await self.exporter.stop()
            await self.discovery.stop()
            await self.health.stop()
            for upstream in self.upstreams.values():
                upstream.close()
            if self.runs_checks:
                self.log.event("stopped")
            self.log.flush()

    def _log_state_change(self, backend: Backend, up: bool, reason: str) -> None:
        self.log.event(
            "backend_up" if up else "backend_down",
            level="info" if up else "warning",
            backend=backend.url,
            address=backend.address,
            reason=reason,
        )


def create_app(settings: GatewaySettings, **options: Any) -> Gateway:
    """Build the gateway from explicit settings (tests pass their own)."""
    return Gateway(settings, **options)


def create_app_from_env() -> Gateway:
    """Build the gateway from the environment, or exit with one clear line."""
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"gateway_service: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    return create_app(settings)


def __getattr__(name: str) -> Gateway:
    if name == "app":
        return create_app_from_env()
    raise AttributeError(name)
