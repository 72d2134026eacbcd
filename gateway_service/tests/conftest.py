from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest

from gateway_service.app import Gateway, create_app
from gateway_service.logs import EventLog
from gateway_service.settings import GatewaySettings, StorageURL, load_settings
from gateway_service.tests.fakes import FakeClock, FakeStorage

STORAGES = "http://storage1:8000,http://storage2:8000,http://storage3:8000"


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests pass their settings explicitly; the caller's environment must not leak into them.
    for name in GatewaySettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class LogSink:
    """A text stream that keeps what the gateway logged."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


@dataclass
class Stack:
    gateway: Gateway
    client: httpx.AsyncClient
    storages: list[FakeStorage]
    clock: FakeClock
    logs: LogSink

    def storage(self, name: str) -> FakeStorage:
        return next(s for s in self.storages if s.name == name)

    async def instances(self, count: int) -> list[str]:
        """`count` sequential GET /data; the instance that served each."""
        served = []
        for _ in range(count):
            response = await self.client.get("/data")
            assert response.status_code == 200, response.text
            served.append(response.json()["instance"])
        return served


StackFactory = Callable[..., Stack]


@pytest.fixture
async def make_stack() -> AsyncIterator[StackFactory]:
    clients: list[httpx.AsyncClient] = []

    def build(**settings: object) -> Stack:
        storages: list[FakeStorage] = []

        def factory(storage: StorageURL) -> FakeStorage:
            fake = FakeStorage(storage)
            storages.append(fake)
            return fake

        clock = FakeClock()
        logs = LogSink()
        gateway = create_app(
            load_settings(**{"storage_services": STORAGES, **settings}),
            upstream_factory=factory,
            clock=clock,
            wall_clock=lambda: 1_795_500_000.0,
            log=EventLog(logs, fmt="json"),  # type: ignore[arg-type]
        )
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=gateway), base_url="http://gateway"
        )
        clients.append(client)
        return Stack(gateway, client, storages, clock, logs)

    yield build
    for client in clients:
        await client.aclose()


@pytest.fixture
def stack(make_stack: StackFactory) -> Stack:
    return make_stack()
