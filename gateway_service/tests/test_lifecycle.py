"""A worker's life: start-up, serving over real sockets, and a graceful shutdown that lets the
request in flight finish before the health checks stop."""

import asyncio
import socket

import httpx
import pytest
import uvicorn

from gateway_service.app import Gateway, create_app
from gateway_service.connections import ConnectionGuard
from gateway_service.logs import EventLog
from gateway_service.settings import load_settings
from gateway_service.tests.conftest import LogSink
from gateway_service.tests.fakes import eventually, uvicorn_serving
from gateway_service.worker import serve_forever
from storage_service.app import create_app as create_storage
from storage_service.settings import StorageSettings

pytestmark = pytest.mark.anyio


async def test_in_flight_requests_finish_on_shutdown_then_health_checks_stop() -> None:
    storage_app = create_storage(
        StorageSettings(instance_name="slow-1", enable_fault_injection=True)
    )
    config = uvicorn.Config(storage_app, log_level="warning", lifespan="off")
    async with uvicorn_serving(uvicorn.Server(config)) as storage_port:
        storage = f"http://127.0.0.1:{storage_port}"
        async with httpx.AsyncClient(base_url=storage) as admin:
            await admin.put("/admin/fault", json={"mode": "slow", "delay_ms": 300})
        logs = LogSink()
        log = EventLog(logs, fmt="json")  # type: ignore[arg-type]
        gateway: Gateway = create_app(
            load_settings(storage_services=storage, health_interval=0.1), log=log
        )
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        guard = ConnectionGuard(client_timeout=10, max_connections=10, log=log)
        stop = asyncio.Event()
        serving = asyncio.create_task(
            serve_forever(
                gateway,
                [sock],
                guard,
                log,
                access_log=True,
                shutdown_timeout=5,
                lifespan=gateway.running(),
                stop=stop,
            )
        )
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        async with httpx.AsyncClient(base_url=base) as client:
            await eventually(lambda: gateway.balancer.backends[0].last_checked is not None)
            pending = asyncio.create_task(client.get("/data"))
            await eventually(lambda: bool(guard.open) and not guard.waiting)
            stop.set()
            response = await pending
        await asyncio.wait_for(serving, 10)
        assert response.status_code == 200
        assert response.json()["instance"] == "slow-1"
        assert response.headers["connection"] == "close"
        assert gateway.health._tasks == {}
        assert '"event":"worker_stopped"' in logs.text
