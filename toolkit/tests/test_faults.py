"""The fault endpoint client against the real storage service, served on 127.0.0.1."""

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from storage_service.app import create_app
from storage_service.settings import StorageSettings
from toolkit.faults import FaultError, fault_request, set_fault
from toolkit.waiting import wait_until


def _serve(enabled: bool) -> Iterator[str]:
    settings = StorageSettings(instance_name="s1", enable_fault_injection=enabled)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=10.0, what="the storage service to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def storage() -> Iterator[str]:
    yield from _serve(enabled=True)


@pytest.fixture
def storage_without_faults() -> Iterator[str]:
    yield from _serve(enabled=False)


def test_a_mode_set_is_what_the_service_does(storage: str) -> None:
    set_fault("s1", storage, "unavailable")
    assert httpx.get(storage + "/data").status_code == 503

    set_fault("s1", storage, "slow", delay_ms=50)
    assert httpx.get(storage + "/admin/fault").json() == {"mode": "slow", "delay_ms": 50}

    set_fault("s1", storage, "normal")
    assert httpx.get(storage + "/data").status_code == 200


def test_reading_the_mode_changes_nothing(storage: str) -> None:
    assert fault_request(storage, None) == 200
    assert httpx.get(storage + "/data").status_code == 200


def test_a_disabled_endpoint_says_how_to_enable_it(storage_without_faults: str) -> None:
    with pytest.raises(FaultError, match=r"disabled on s1.*ENABLE_FAULT_INJECTION=true"):
        set_fault("s1", storage_without_faults, "unavailable")


def test_a_refused_mode_names_the_status(storage: str) -> None:
    with pytest.raises(FaultError, match=r"PUT /admin/fault on s1 failed: 422"):
        set_fault("s1", storage, "melting")


def test_no_answer_is_a_fault_error(closed_port_url: str) -> None:
    with pytest.raises(FaultError, match=r"on s1: no answer"):
        set_fault("s1", closed_port_url, "unavailable", timeout=1.0)
