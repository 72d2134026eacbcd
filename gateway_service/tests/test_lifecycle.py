"""The gateway's life as uvicorn runs it: start-up, serving over real sockets, graceful shutdown."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from gateway_service.app import Gateway, create_app
from gateway_service.logs import EventLog
from gateway_service.settings import load_settings
from gateway_service.tests.conftest import LogSink
from gateway_service.tests.fakes import eventually, serving
from storage_service.app import create_app as create_storage
from storage_service.settings import StorageSettings

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def serving_app(
    app: ASGIApp, lifespan: Literal["on", "off"] = "on"
) -> AsyncIterator[uvicorn.Server]:
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan))
    async with serving(server):
        yield server


def url(server: uvicorn.Server) -> str:
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    return f"http://{host}:{port}"


async def test_in_flight_requests_finish_on_shutdown_then_health_checks_stop() -> None:
    storage_app = create_storage(
        StorageSettings(instance_name="slow-1", enable_fault_injection=True)
    )
    async with serving_app(storage_app, lifespan="off") as storage:
        async with httpx.AsyncClient(base_url=url(storage)) as admin:
            await admin.put("/admin/fault", json={"mode": "slow", "delay_ms": 300})
        gateway: Gateway = create_app(
            load_settings(storage_services=url(storage), health_interval=0.1),
            log=EventLog(LogSink(), fmt="json"),  # type: ignore[arg-type]
        )
        async with serving_app(gateway) as front, httpx.AsyncClient(base_url=url(front)) as client:
            await eventually(lambda: gateway.balancer.backends[0].last_checked is not None)
            pending = asyncio.create_task(client.get("/data"))
            await eventually(lambda: bool(front.server_state.tasks))
            front.should_exit = True
            response = await pending
        assert response.status_code == 200
        assert response.json()["instance"] == "slow-1"
        assert gateway.health._tasks == {}
