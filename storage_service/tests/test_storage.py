"""Storage service behaviour, called in-process."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from storage_service.app import create_app
from storage_service.settings import StorageSettings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_client(**overrides: object) -> httpx.AsyncClient:
    settings = StorageSettings.model_validate({"instance_name": "storage-x", **overrides})
    transport = httpx.ASGITransport(app=create_app(settings))
    return httpx.AsyncClient(transport=transport, base_url="http://storage")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(enable_fault_injection=True) as client:
        yield client


async def set_fault(client: httpx.AsyncClient, **fault: object) -> None:
    response = await client.put("/admin/fault", json=fault)
    assert response.status_code == 200, response.text


@pytest.mark.anyio
class TestData:
    async def test_data_names_the_instance_that_served_it(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/data")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json()["instance"] == "storage-x"
        assert response.json()["items"]

    @pytest.mark.parametrize("size", [64, 512, 20_000])
    async def test_payload_size_follows_the_setting(self, size: int) -> None:
        async with make_client(data_bytes=size) as client:
            body = (await client.get("/data")).content
        assert size <= len(body) < size + 64

    @pytest.mark.parametrize("path", ["/data/", "/health/", "/admin/fault/"])
    async def test_a_trailing_slash_is_not_found_rather_than_redirected(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        response = await client.get(path, headers={"host": "attacker.example"})
        assert response.status_code == 404
        assert response.json() == {"detail": "Not Found"}
        assert "location" not in response.headers

    async def test_health_is_available_by_default(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health")
        assert response.status_code == 200
        assert response.json() == {"status": "available", "instance": "storage-x"}


@pytest.mark.anyio
class TestFaultInjection:
    async def test_admin_is_off_unless_enabled(self) -> None:
        async with make_client() as client:
            assert (await client.get("/admin/fault")).status_code == 404
            assert (await client.put("/admin/fault", json={"mode": "error"})).status_code == 404
            assert (await client.get("/admin/requests")).status_code == 404

    async def test_unavailable_fails_health_and_data_with_503(
        self, client: httpx.AsyncClient
    ) -> None:
        await set_fault(client, mode="unavailable")
        health = await client.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable"
        assert (await client.get("/data")).status_code == 503

    async def test_error_fails_data_but_not_health(self, client: httpx.AsyncClient) -> None:
        await set_fault(client, mode="error")
        assert (await client.get("/data")).status_code == 500
        assert (await client.get("/health")).status_code == 200

    async def test_slow_delays_data_by_the_set_delay(self, client: httpx.AsyncClient) -> None:
        await set_fault(client, mode="slow", delay_ms=200)
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert (await client.get("/data")).status_code == 200
        assert loop.time() - started >= 0.2

    async def test_hang_holds_data_until_the_mode_changes(self, client: httpx.AsyncClient) -> None:
        await set_fault(client, mode="hang")
        pending = asyncio.create_task(client.get("/data"))
        done, _ = await asyncio.wait({pending}, timeout=0.3)
        assert not done, "a hanging instance answered"
        await set_fault(client, mode="normal")
        assert (await pending).status_code == 200

    async def test_flaky_fails_every_second_request_after_the_delay(
        self, client: httpx.AsyncClient
    ) -> None:
        await set_fault(client, mode="flaky", delay_ms=50)
        loop = asyncio.get_running_loop()
        started = loop.time()
        codes = [(await client.get("/data")).status_code for _ in range(4)]
        assert codes == [200, 500, 200, 500]
        assert loop.time() - started >= 4 * 0.05
        assert (await client.get("/health")).status_code == 200

    async def test_requests_counts_data_requests_and_keeps_the_last_traceparent(
        self, client: httpx.AsyncClient
    ) -> None:
        parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        await client.get("/data")
        await client.get("/health")
        await client.get("/data", headers={"traceparent": parent})
        assert (await client.get("/admin/requests")).json() == {"data": 2, "traceparent": parent}
        assert (await client.delete("/admin/requests")).status_code == 204
        assert (await client.get("/admin/requests")).json() == {"data": 0, "traceparent": None}

    async def test_normal_restores_service(self, client: httpx.AsyncClient) -> None:
        await set_fault(client, mode="unavailable")
        await set_fault(client, mode="normal")
        assert (await client.get("/data")).status_code == 200
        assert (await client.get("/admin/fault")).json() == {"mode": "normal", "delay_ms": 0}

    @pytest.mark.parametrize(
        "payload",
        [
            {"mode": "bogus"},
            {"mode": "error", "delay_ms": 5},
            {"mode": "slow", "delay_ms": -1},
            {"mode": "flaky", "delay_ms": -1},
        ],
    )
    async def test_bad_payload_is_rejected_with_422(
        self, client: httpx.AsyncClient, payload: dict[str, object]
    ) -> None:
        response = await client.put("/admin/fault", json=payload)
        assert response.status_code == 422
        assert response.json()["detail"]


class TestSettings:
    def test_bad_setting_exits_with_one_clear_line(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        from storage_service import app as module

        monkeypatch.setenv("DATA_BYTES", "3")
        with pytest.raises(SystemExit) as exit_info:
            _ = module.app
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("storage_service: invalid settings: DATA_BYTES=")
        assert "\n" not in err
