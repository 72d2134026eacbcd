"""The admin API and SIGHUP on `python -m gateway_service` as a process: a real supervisor with
several workers, real local storage servers, the admin port served by the control process."""

import http.client
import json
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway_service.tests.fakes import CountingStorage
from gateway_service.tests.test_server import (
    events,
    free_port,
    gateway_command,
    get,
    instance,
    process,
    start_serving,
    wait_until,
)

TOKEN = secrets.token_urlsafe(24)  # made per run: no secret lives in the tree

pytestmark = pytest.mark.slow


@dataclass
class Admin:
    port: int
    admin_port: int
    child: Any
    log: Path
    storages: list[CountingStorage]

    def call(
        self, method: str, path: str, body: object = None, token: str | None = TOKEN
    ) -> tuple[int, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=20)
        headers = {} if token is None else {"authorization": f"Bearer {token}"}
        payload = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        try:
            connection.request(method, path, body=payload, headers=headers)
            answer = connection.getresponse()
            return answer.status, json.loads(answer.read())
        finally:
            connection.close()

    def backends(self) -> list[dict[str, Any]]:
        status, document = self.call("GET", "/admin/backends")
        assert status == 200, document
        backends: list[dict[str, Any]] = document["backends"]
        return backends

    def urls(self) -> list[str]:
        return [backend["url"] for backend in self.backends()]

    def events(self, name: str) -> list[dict[str, object]]:
        return events(self.log.read_text(), name)


@contextmanager
def admin_gateway(
    tmp_path: Path, workers: int, storages: int = 3, use_file: bool = False, **settings: object
) -> Iterator[Admin]:
    with ExitStack() as stack:
        servers = [stack.enter_context(CountingStorage(f"storage{i}")) for i in range(1, 4)]
        port, admin_port = free_port(), free_port()
        log = tmp_path / "gateway.log"
        urls = ",".join(server.url for server in servers[:storages])
        env = {
            "LOG_FORMAT": "json",
            "HEALTH_INTERVAL": "0",
            "ADMIN_PORT": str(admin_port),
            "ADMIN_TOKEN": TOKEN,
            **{name.upper(): str(value) for name, value in settings.items()},
        }
        if use_file:
            (tmp_path / "storages").write_text(urls.replace(",", "\n") + "\n")
            env["STORAGE_SERVICES_FILE"] = str(tmp_path / "storages")
        else:
            env["STORAGE_SERVICES"] = urls
        child = stack.enter_context(process(gateway_command(port, workers), env, log))
        start_serving(child, port, log)
        running = Admin(port, admin_port, child, log, servers)
        wait_until("admin serving", lambda: bool(running.events("admin_serving")), 30)
        wait_until(
            "every worker serving", lambda: len(running.events("worker_serving")) == workers, 30
        )
        yield running


@pytest.mark.parametrize(
    ("workers", "balancing"), [(1, "round_robin"), (3, "round_robin"), (3, "least_request")]
)
def test_drain_under_load_fails_nothing_and_storage2_gets_nothing_after_it(
    tmp_path: Path, workers: int, balancing: str
) -> None:
    with admin_gateway(tmp_path, workers=workers, read_timeout=10, balancing=balancing) as gw:
        for storage in gw.storages:
            storage.delay = 0.01  # requests are in flight on storage2 when the drain comes
        results: list[int | None] = []
        stop_load = threading.Event()

        def load() -> None:
            while not stop_load.is_set():
                results.append(get(gw.port, "/data", 10.0)[0])

        threads = [threading.Thread(target=load) for _ in range(6)]
        for thread in threads:
            thread.start()
        try:
            wait_until("load running", lambda: gw.storages[1].in_flight > 0, 10)
            status, answer = gw.call("POST", "/admin/backends/drain", {"url": gw.storages[1].url})
            hits_at_return = gw.storages[1].hits["/data"]
            served_at_return = len(results)
            assert (status, answer["state"], answer["in_flight"]) == (200, "draining", 0)
            assert gw.storages[1].in_flight == 0  # what it was sent has been answered
            wait_until("300 more requests", lambda: len(results) > served_at_return + 300, 30)
            assert gw.storages[1].hits["/data"] == hits_at_return
            listed = {b["url"]: b["state"] for b in gw.backends()}
            assert listed[gw.storages[1].url] == "draining"
            status_doc = json.loads(get(gw.port, "/status")[1])
            assert [s["status"] for s in status_doc["services"]] == [
                "available",
                "draining",
                "available",
            ]
            # Undrained, it takes its turns again.
            assert gw.call("POST", "/admin/backends/undrain", {"url": gw.storages[1].url})[0] == 200
            wait_until(
                "storage2 serving again",
                lambda: gw.storages[1].hits["/data"] > hits_at_return + 10,
                10,
            )
        finally:
            stop_load.set()
            for thread in threads:
                thread.join(15)
        assert results.count(200) == len(results), {s: results.count(s) for s in set(results)}
        assert hits_at_return > 0


def test_a_backend_added_at_run_time_is_served_by_every_worker(tmp_path: Path) -> None:
    with admin_gateway(tmp_path, workers=3, storages=2) as gw:
        added = gw.storages[2].url  # not in STORAGE_SERVICES: workers learn it from the board
        assert gw.call("POST", "/admin/backends", {"url": added})[0] == 201
        served = [instance(get(gw.port, "/data")[1]) for _ in range(30)]
        assert served == ["storage1", "storage2", "storage3"] * 10
        assert gw.call("PUT", "/admin/backends/weight", {"url": added, "weight": 3})[0] == 200
        served = [instance(get(gw.port, "/data")[1]) for _ in range(50)]
        assert (served.count("storage1"), served.count("storage3")) == (10, 30)
        assert gw.call("DELETE", f"/admin/backends?url={added}")[0] == 200
        before = gw.storages[2].hits["/data"]
        served = [instance(get(gw.port, "/data")[1]) for _ in range(10)]
        assert sorted(set(served)) == ["storage1", "storage2"]
        assert gw.storages[2].hits["/data"] == before


def test_the_control_process_restarted_keeps_what_the_api_changed(tmp_path: Path) -> None:
    with admin_gateway(tmp_path, workers=2, storages=2, discovery_interval=0.2) as gw:
        assert (
            gw.call("POST", "/admin/backends", {"url": gw.storages[2].url, "weight": 2})[0] == 201
        )
        assert gw.call("POST", "/admin/backends/drain", {"url": gw.storages[0].url})[0] == 200
        before = [(b["url"], b["weight"], b["state"]) for b in gw.backends()]
        [started] = gw.events("admin_serving")
        os.kill(int(started["pid"]), signal.SIGKILL)  # type: ignore[call-overload]
        wait_until("a new control process", lambda: len(gw.events("admin_serving")) == 2, 10)
        # Discovery runs in the new one every 0.2 s: what it writes must keep the API's
        # changes. Nothing shows a round that changed nothing, so this waits for a few.
        time.sleep(0.6)
        served = [instance(get(gw.port, "/data")[1]) for _ in range(12)]
        assert served.count("storage1") == 0  # still drained
        assert served.count("storage3") == 8  # still weight 2
        after = [(b["url"], b["weight"], b["state"]) for b in gw.backends()]
        assert after == before


def test_sighup_reads_the_storage_services_file_again(tmp_path: Path) -> None:
    with admin_gateway(tmp_path, workers=3, storages=2, use_file=True) as gw:
        s1, s2, s3 = (storage.url for storage in gw.storages)
        assert gw.urls() == [s1, s2]
        (tmp_path / "storages").write_text(f"# after the move\n{s2}, {s3}\n")
        gw.child.send_signal(signal.SIGHUP)
        wait_until("the new entries", lambda: gw.urls() == [s2, s3], 10)
        served = [instance(get(gw.port, "/data")[1]) for _ in range(20)]
        assert sorted(set(served)) == ["storage2", "storage3"]
        assert served.count("storage2") == served.count("storage3") == 10
        # A file that cannot be used changes nothing, and says why.
        (tmp_path / "storages").write_text(f"{s1}\nftp://nowhere:21\n")
        gw.child.send_signal(signal.SIGHUP)
        wait_until("the failure logged", lambda: bool(gw.events("reload_failed")), 10)
        assert "ftp://nowhere:21" in str(gw.events("reload_failed")[0]["error"])
        assert gw.urls() == [s2, s3]
        assert gw.child.poll() is None
        # A SIGHUP straight to a worker (a terminal closing reaches every process) kills none.
        for event in gw.events("worker_serving"):
            os.kill(int(event["pid"]), signal.SIGHUP)  # type: ignore[call-overload]
        served = [instance(get(gw.port, "/data")[1]) for _ in range(6)]
        assert sorted(served) == ["storage2"] * 3 + ["storage3"] * 3
        assert gw.events("worker_exited") == []


BAD = [
    ("GET", "/admin/backends", None, None, 401),
    ("GET", "/admin/backends", None, "wrong-token", 401),
    ("POST", "/admin/backends", {"url": "http://storage9"}, TOKEN, 400),
    ("POST", "/admin/backends", b"{broken", TOKEN, 400),
    ("POST", "/admin/backends", {"url": "http://storage9:1", "weight": 0}, TOKEN, 400),
    ("PUT", "/admin/backends/weight", {"url": "http://storage9:1", "weight": 2}, TOKEN, 404),
    ("DELETE", "/admin/backends?url=http://storage9:1", None, TOKEN, 404),
    ("GET", "/admin/elsewhere", None, TOKEN, 404),
    ("PATCH", "/admin/backends", None, TOKEN, 405),
]


def test_bad_admin_requests_are_4xx_and_change_nothing_and_the_public_port_has_no_admin(
    tmp_path: Path,
) -> None:
    with admin_gateway(tmp_path, workers=2) as gw:
        before = gw.backends()
        for method, path, body, token, expected in BAD:
            status, answer = gw.call(method, path, body, token)
            assert (status, isinstance(answer.get("error"), str)) == (expected, True), path
        assert gw.backends() == before
        assert get(gw.port, "/admin/backends")[0] == 404
        assert "Traceback" not in gw.log.read_text()
