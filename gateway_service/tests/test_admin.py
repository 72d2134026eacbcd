"""The admin API in-process, against a gateway with storage services faked: every operation, and
every bad request answered with a clear 4xx that changes nothing."""

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway_service.admin import AdminAPI, Roster
from gateway_service.tests.conftest import Stack, StackFactory

pytestmark = pytest.mark.anyio

TOKEN = secrets.token_urlsafe(24)  # made per run: no secret lives in the tree
AUTH = {"authorization": f"Bearer {TOKEN}"}
S2 = "http://storage2:8000"


@dataclass
class Admin:
    stack: Stack
    roster: Roster
    client: httpx.AsyncClient

    async def get(self) -> list[dict[str, Any]]:
        response = await self.client.get("/admin/backends", headers=AUTH)
        assert response.status_code == 200, response.text
        backends: list[dict[str, Any]] = response.json()["backends"]
        return backends

    async def state(self) -> tuple[list[dict[str, Any]], int]:
        """What the API lists and the table's sequence number: both unchanged by a refusal."""
        return await self.get(), self.stack.gateway.board.sequence

    async def served_by(self, count: int) -> list[str]:
        return await self.stack.instances(count)


@pytest.fixture
async def admin(make_stack: StackFactory) -> AsyncIterator[Admin]:
    # No active checks: a backend added here is in rotation at once (with them, after a probe).
    stack = make_stack(health_interval=0, discovery_interval=0)
    roster = Roster(stack.gateway)
    roster.restore()
    app = AdminAPI(roster, TOKEN, drain_within=1.0)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://admin"
    ) as client:
        yield Admin(stack, roster, client)


class TestToken:
    @pytest.mark.parametrize(
        "headers",
        [
            pytest.param({}, id="none"),
            pytest.param({"authorization": "Bearer wrong"}, id="wrong"),
            pytest.param({"authorization": TOKEN}, id="no-scheme"),
            pytest.param({"authorization": f"Basic {TOKEN}"}, id="basic"),
            pytest.param({"authorization": f"Bearer {TOKEN}x"}, id="longer"),
        ],
    )
    async def test_without_the_token_every_request_is_401_and_changes_nothing(
        self, admin: Admin, headers: dict[str, str]
    ) -> None:
        before = await admin.state()
        for method, path, body in [
            ("GET", "/admin/backends", None),
            ("POST", "/admin/backends", {"url": "http://storage9:8000"}),
            ("DELETE", f"/admin/backends?url={S2}", None),
            ("POST", "/admin/backends/drain", {"url": S2}),
            ("GET", "/admin/nothing-here", None),
        ]:
            response = await admin.client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
            assert "error" in response.json()
        assert await admin.state() == before

    async def test_two_authorization_headers_are_refused(self, admin: Admin) -> None:
        headers = [("authorization", f"Bearer {TOKEN}")] * 2
        response = await admin.client.get("/admin/backends", headers=headers)
        assert response.status_code == 401


class TestList:
    async def test_every_backend_with_its_state_weight_and_counts(self, admin: Admin) -> None:
        await admin.served_by(3)
        assert await admin.get() == [
            {
                "url": f"http://storage{i}:8000",
                "address": f"storage{i}:8000",
                "weight": 1,
                "state": "up",
                "in_flight": 0,
                "requests_served": 1,
            }
            for i in (1, 2, 3)
        ]


class TestAddAndRemove:
    async def test_an_added_backend_takes_its_turn_at_once(self, admin: Admin) -> None:
        response = await admin.client.post(
            "/admin/backends", json={"url": "http://storage4:8000"}, headers=AUTH
        )
        assert response.status_code == 201
        assert response.json() == {"url": "http://storage4:8000", "weight": 1}
        assert [b["url"] for b in await admin.get()][-1] == "http://storage4:8000"
        assert await admin.served_by(8) == ["storage1", "storage2", "storage3", "storage4"] * 2

    async def test_an_added_backend_with_a_weight(self, admin: Admin) -> None:
        response = await admin.client.post(
            "/admin/backends", json={"url": "http://storage4:8000", "weight": 3}, headers=AUTH
        )
        assert response.status_code == 201
        served = await admin.served_by(12)
        assert served.count("storage4") == 6
        assert served.count("storage1") == 2

    async def test_adding_one_present_is_409_and_changes_nothing(self, admin: Admin) -> None:
        before = await admin.state()
        for url in (S2, "http://storage2:8000/", "http://STORAGE2:8000"):
            response = await admin.client.post("/admin/backends", json={"url": url}, headers=AUTH)
            assert response.status_code in (400, 409), url
        response = await admin.client.post("/admin/backends", json={"url": S2}, headers=AUTH)
        assert response.status_code == 409
        assert await admin.state() == before

    async def test_a_removed_backend_gets_no_more_requests(self, admin: Admin) -> None:
        response = await admin.client.delete("/admin/backends", params={"url": S2}, headers=AUTH)
        assert response.status_code == 200
        assert [b["url"] for b in await admin.get()] == [
            "http://storage1:8000",
            "http://storage3:8000",
        ]
        assert await admin.served_by(4) == ["storage1", "storage3"] * 2
        assert admin.stack.storage("storage2").closed  # its idle connections are closed

    async def test_removing_an_unknown_one_is_404(self, admin: Admin) -> None:
        before = await admin.state()
        response = await admin.client.delete(
            "/admin/backends", params={"url": "http://storage9:8000"}, headers=AUTH
        )
        assert response.status_code == 404
        assert await admin.state() == before

    async def test_a_removed_start_up_entry_can_be_added_back(self, admin: Admin) -> None:
        await admin.client.delete("/admin/backends", params={"url": S2}, headers=AUTH)
        response = await admin.client.post("/admin/backends", json={"url": S2}, headers=AUTH)
        assert response.status_code == 201
        assert sorted(await admin.served_by(3)) == ["storage1", "storage2", "storage3"]


class TestWeight:
    async def test_a_weight_sets_the_share(self, admin: Admin) -> None:
        response = await admin.client.put(
            "/admin/backends/weight", json={"url": S2, "weight": 2}, headers=AUTH
        )
        assert response.status_code == 200
        served = await admin.served_by(40)
        assert (served.count("storage1"), served.count("storage2"), served.count("storage3")) == (
            10,
            20,
            10,
        )
        assert [b["weight"] for b in await admin.get()] == [1, 2, 1]

    async def test_an_unknown_backend_is_404(self, admin: Admin) -> None:
        response = await admin.client.put(
            "/admin/backends/weight",
            json={"url": "http://storage9:8000", "weight": 2},
            headers=AUTH,
        )
        assert response.status_code == 404


class TestDrain:
    async def test_a_drained_backend_leaves_the_rotation_until_undrained(
        self, admin: Admin
    ) -> None:
        response = await admin.client.post("/admin/backends/drain", json={"url": S2}, headers=AUTH)
        assert response.status_code == 200
        assert response.json() == {"url": S2, "state": "draining", "in_flight": 0}
        assert [b["state"] for b in await admin.get()] == ["up", "draining", "up"]
        status = (await admin.stack.client.get("/status")).json()
        assert [s["status"] for s in status["services"]] == ["available", "draining", "available"]
        assert status["available"] == 2
        assert await admin.served_by(6) == ["storage1", "storage3"] * 3
        response = await admin.client.post(
            "/admin/backends/undrain", json={"url": S2}, headers=AUTH
        )
        assert response.status_code == 200
        assert [b["state"] for b in await admin.get()] == ["up", "up", "up"]
        assert "storage2" in await admin.served_by(3)

    async def test_draining_an_unknown_backend_is_404(self, admin: Admin) -> None:
        for path in ("/admin/backends/drain", "/admin/backends/undrain"):
            response = await admin.client.post(
                path, json={"url": "http://storage9:8000"}, headers=AUTH
            )
            assert response.status_code == 404


BAD_REQUESTS = [
    # Not http://host:port.
    ("POST", "/admin/backends", {"json": {"url": "storage4:8000"}}, 400),
    ("POST", "/admin/backends", {"json": {"url": "https://storage4:8000"}}, 400),
    ("POST", "/admin/backends", {"json": {"url": "http://storage4"}}, 400),
    ("POST", "/admin/backends", {"json": {"url": "http://storage4:8000/data"}}, 400),
    ("POST", "/admin/backends", {"json": {"url": "http://user@storage4:8000"}}, 400),
    ("POST", "/admin/backends", {"json": {"url": "http://storage4:99999"}}, 400),
    ("POST", "/admin/backends", {"json": {"url": "http://-bad-:8000"}}, 400),
    ("POST", "/admin/backends", {"json": {"url": "http://" + "a" * 300 + ":1"}}, 400),
    # Wrong types, missing or unknown fields, weights out of range.
    ("POST", "/admin/backends", {"json": {"url": 7}}, 400),
    ("POST", "/admin/backends", {"json": {}}, 400),
    ("POST", "/admin/backends", {"json": {"url": "http://s4:1", "colour": "red"}}, 400),
    ("POST", "/admin/backends", {"json": {"url": "http://s4:1", "weight": 0}}, 400),
    ("POST", "/admin/backends", {"json": {"url": "http://s4:1", "weight": 101}}, 400),
    ("POST", "/admin/backends", {"json": {"url": "http://s4:1", "weight": True}}, 400),
    ("POST", "/admin/backends", {"json": {"url": "http://s4:1", "weight": 1.5}}, 400),
    ("POST", "/admin/backends", {"json": {"url": "http://s4:1", "weight": "2"}}, 400),
    ("PUT", "/admin/backends/weight", {"json": {"url": S2, "weight": 0}}, 400),
    ("PUT", "/admin/backends/weight", {"json": {"url": S2, "weight": 101}}, 400),
    ("PUT", "/admin/backends/weight", {"json": {"url": S2, "weight": -1}}, 400),
    ("PUT", "/admin/backends/weight", {"json": {"url": S2, "weight": None}}, 400),
    ("PUT", "/admin/backends/weight", {"json": {"url": S2}}, 400),
    ("PUT", "/admin/backends/weight", {"json": [S2, 2]}, 400),
    # Not JSON at all.
    ("POST", "/admin/backends", {"content": b"{not json"}, 400),
    ("POST", "/admin/backends", {"content": b""}, 400),
    ("POST", "/admin/backends", {"content": b"\xff\xfe"}, 400),
    ("POST", "/admin/backends", {"content": b"[" * 100_000}, 400),
    ("POST", "/admin/backends/drain", {"content": b'"http://storage2:8000"'}, 400),
    ("POST", "/admin/backends/drain", {"json": {"url": None}}, 400),
    # The query of a delete.
    ("DELETE", "/admin/backends", {}, 400),
    ("DELETE", "/admin/backends?url=nonsense", {}, 400),
    ("DELETE", f"/admin/backends?url={S2}&url={S2}", {}, 400),
    ("DELETE", f"/admin/backends?url={S2}&other=1", {}, 400),
    # Paths and methods.
    ("GET", "/admin/backends/", {}, 404),
    ("GET", "/admin", {}, 404),
    ("GET", "/status", {}, 404),
    ("GET", "/data", {}, 404),
    ("PATCH", "/admin/backends", {}, 405),
    ("GET", "/admin/backends/drain", {}, 405),
    ("DELETE", "/admin/backends/weight", {}, 405),
    ("POST", "/admin/backends/weight", {"json": {"url": S2, "weight": 2}}, 405),
]


class TestBadRequests:
    @pytest.mark.parametrize(("method", "path", "body", "expected"), BAD_REQUESTS)
    async def test_a_bad_request_is_a_clear_4xx_and_changes_nothing(
        self, admin: Admin, method: str, path: str, body: dict[str, Any], expected: int
    ) -> None:
        before = await admin.state()
        response = await admin.client.request(method, path, headers=AUTH, **body)
        assert response.status_code == expected, response.text
        error = response.json()["error"]
        assert isinstance(error, str)
        assert error
        assert "Traceback" not in response.text
        if expected == 405:
            assert response.headers["allow"]
        assert await admin.state() == before


class TestReload:
    async def test_the_file_becomes_the_entries_keeping_weights_of_those_kept(
        self, admin: Admin, tmp_path: Path
    ) -> None:
        await admin.client.put(
            "/admin/backends/weight", json={"url": S2, "weight": 2}, headers=AUTH
        )
        path = tmp_path / "storages"
        path.write_text("# the storage services\nhttp://storage2:8000\n\nhttp://storage5:8000,\n")
        await admin.roster.reload(str(path))
        listed = await admin.get()
        assert [(b["url"], b["weight"]) for b in listed] == [
            (S2, 2),
            ("http://storage5:8000", 1),
        ]
        assert sorted(await admin.served_by(3)) == ["storage2", "storage2", "storage5"]

    @pytest.mark.parametrize(
        "content", ["", "# nothing\n", "http://a:1\nhttps://b:2\n", "http://a:1,http://a:1"]
    )
    async def test_a_bad_file_changes_nothing_and_is_logged(
        self, admin: Admin, tmp_path: Path, content: str
    ) -> None:
        path = tmp_path / "storages"
        path.write_text(content)
        before = await admin.state()
        await admin.roster.reload(str(path))
        await admin.roster.reload(str(tmp_path / "missing"))
        assert await admin.state() == before
        admin.stack.gateway.log.flush()
        assert admin.stack.logs.text.count('"event":"reload_failed"') == 2


class TestRestart:
    async def test_a_new_control_process_keeps_what_the_api_changed(self, admin: Admin) -> None:
        await admin.client.post(
            "/admin/backends", json={"url": "http://storage4:8000", "weight": 5}, headers=AUTH
        )
        await admin.client.delete("/admin/backends", params={"url": S2}, headers=AUTH)
        await admin.client.post(
            "/admin/backends/drain", json={"url": "http://storage3:8000"}, headers=AUTH
        )
        before = await admin.get()
        # A restarted control process starts from the settings, then reads the board.
        fresh = Roster(admin.stack.gateway)
        fresh.discovery.storages = list(admin.stack.gateway.settings.storage_services)
        fresh.balancer.weights.clear()
        fresh.balancer.draining.clear()
        fresh.restore()
        assert [s.url for s in fresh.entries] == [
            "http://storage1:8000",
            "http://storage3:8000",
            "http://storage4:8000",
        ]
        assert fresh.listing() == before
