"""toolkit.storage_control against real storage containers: each way of breaking a service
does what the tools rely on, and is undone by `restore` (the harness's own tool, tested here
because the suite's `images` fixture builds what it needs)."""

import contextlib
import http.client
from collections.abc import Iterator

import pytest
from docker.models.networks import Network

from storage_service.faults import FaultMode
from tests.harness import docker_env
from tests.harness.gateways import STORAGE_IMAGE
from toolkit.faults import FaultError
from toolkit.storage_control import STORAGE_PORT, StorageContainer
from toolkit.waiting import wait_until

pytestmark = pytest.mark.integration

STARTUP_TIMEOUT = 60.0


def health(control: StorageContainer) -> int:
    """GET /health on the container's address; the status code."""
    (address,) = control.addresses()
    connection = http.client.HTTPConnection(address, STORAGE_PORT, timeout=2)
    try:
        connection.request("GET", "/health")
        return connection.getresponse().status
    finally:
        connection.close()


def wait_health(control: StorageContainer, status: int = 200) -> None:
    wait_until(
        lambda: health(control) == status,
        timeout=STARTUP_TIMEOUT,
        what=f"{control.name} /health to answer {status}",
        retry_on=(OSError, ValueError),
    )


@pytest.fixture(scope="module")
def network(images: None) -> Iterator[Network]:
    engine = docker_env.client()
    created = engine.networks.create(
        f"storage-control-{docker_env.RUN_ID}", labels=docker_env.run_labels()
    )
    try:
        yield created
    finally:
        with contextlib.suppress(Exception):
            created.remove()
        engine.close()


def start(network: Network, name: str, *, faults: bool = True) -> StorageContainer:
    engine = network.client
    assert engine is not None
    container = engine.containers.run(
        STORAGE_IMAGE,
        detach=True,
        name=f"{name}-{docker_env.RUN_ID}",
        hostname=name,
        labels=docker_env.run_labels(),
        environment={"INSTANCE_NAME": name, "ENABLE_FAULT_INJECTION": str(faults).lower()},
        network=network.name,
    )
    control = StorageContainer(name, container, network)
    wait_health(control)
    return control


@pytest.fixture
def storage(network: Network) -> Iterator[StorageContainer]:
    control = start(network, "storage-under-test")
    yield control
    with contextlib.suppress(Exception):
        control.container.remove(force=True)


def test_kill_and_stop_end_the_service_and_restore_brings_it_back(
    storage: StorageContainer,
) -> None:
    storage.kill()
    assert storage.state == "exited"
    storage.restore()
    assert storage.state == "running"
    wait_health(storage)

    storage.stop()
    assert storage.state == "exited"
    storage.restore()
    wait_health(storage)


def test_a_paused_service_holds_connections_until_restored(storage: StorageContainer) -> None:
    storage.pause()
    assert storage.state == "paused"
    with pytest.raises(TimeoutError):
        health(storage)
    storage.restore()
    wait_health(storage)


def test_a_disconnected_service_leaves_its_network_and_restore_rejoins_it(
    storage: StorageContainer,
) -> None:
    storage.disconnect()
    assert not storage.attached()
    # The fault endpoint is still reached, through `docker exec`, with no route to the service.
    storage.set_fault(FaultMode.UNAVAILABLE)
    storage.restore()
    assert storage.attached()
    wait_health(storage, 503)
    storage.set_fault(FaultMode.NORMAL)
    wait_health(storage)


def test_a_fault_takes_effect_by_address_and_by_exec(storage: StorageContainer) -> None:
    storage.set_fault(FaultMode.UNAVAILABLE)
    assert health(storage) == 503
    storage._set_fault_by_exec(FaultMode.NORMAL, None)
    assert health(storage) == 200


def test_received_is_the_services_own_count_of_data_requests(storage: StorageContainer) -> None:
    (address,) = storage.addresses()
    before = storage.received()
    for _ in range(3):
        connection = http.client.HTTPConnection(address, STORAGE_PORT, timeout=2)
        try:
            connection.request("GET", "/data")
            assert connection.getresponse().status == 200
        finally:
            connection.close()
    assert storage.received() == before + 3


def test_a_service_without_fault_injection_says_how_to_enable_it(network: Network) -> None:
    control = start(network, "storage-without-faults", faults=False)
    try:
        with pytest.raises(FaultError, match="ENABLE_FAULT_INJECTION=true"):
            control.check_fault_injection()
        with pytest.raises(FaultError, match="ENABLE_FAULT_INJECTION=true"):
            control._set_fault_by_exec(FaultMode.UNAVAILABLE, None)
    finally:
        control.container.remove(force=True)


def test_a_removed_container_is_one_line_naming_the_service(storage: StorageContainer) -> None:
    storage.container.remove(force=True)
    with pytest.raises(FaultError, match=r"^cannot kill storage-under-test: ") as caught:
        storage.kill()
    assert "\n" not in str(caught.value)
