from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest

from gateway_service.app import Gateway, create_app
from gateway_service.backends import Backend
from gateway_service.logs import EventLog
from gateway_service.settings import GatewaySettings, load_settings
from gateway_service.tests.fakes import FakeClock, FakeStorage

STORAGES = "http://storage1:8000,http://storage2:8000,http://storage3:8000"


class FakeDNS:
    """A resolver the test edits: name -> addresses; a missing name fails like NXDOMAIN."""

    def __init__(self) -> None:
        self.records = {f"storage{i}": [f"10.0.0.{i}"] for i in (1, 2, 3)}
        # One name for a replicated service, as a headless Service or a dnsrr swarm service.
        self.records["storage"] = [f"10.0.1.{i}" for i in (1, 2, 3)]
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self.records:
            raise OSError(f"[Errno -2] Name or service not known: {host!r}")
        return self.records[host]


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
    dns: FakeDNS

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
        dns = FakeDNS()

        def factory(backend: Backend) -> FakeStorage:
            # A name with one address keeps the name; each of several is name@address.
            many = len(dns.records.get(backend.storage.host, ())) > 1
            fake = FakeStorage(
                backend.storage, f"{backend.storage.host}@{backend.address}" if many else None
            )
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
            resolver=dns,
        )
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=gateway), base_url="http://gateway"
        )
        clients.append(client)
        return Stack(gateway, client, storages, clock, logs, dns)

    yield build
    for client in clients:
        await client.aclose()


@pytest.fixture
def stack(make_stack: StackFactory) -> Stack:
    return make_stack()
