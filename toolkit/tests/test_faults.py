"""The fault endpoint client against the real storage service, served on 127.0.0.1."""

import httpx
import pytest

from toolkit.faults import FaultError, fault_request, received, reset_received, set_fault


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


def test_received_counts_data_requests_until_reset(storage: str) -> None:
    reset_received("s1", storage)
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    httpx.get(storage + "/data")
    httpx.get(storage + "/data", headers={"traceparent": parent})
    assert received("s1", storage) == (2, parent)
    reset_received("s1", storage)
    assert received("s1", storage) == (0, None)


def test_received_on_a_disabled_endpoint_says_how_to_enable_it(storage_without_faults: str) -> None:
    with pytest.raises(FaultError, match=r"disabled on s1"):
        received("s1", storage_without_faults)
