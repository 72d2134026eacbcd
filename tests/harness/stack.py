"""One stack under test: a private network, storage1..3 and one gateway, all in containers.

Storage services get fixed addresses on the private network so that a killed and restarted
service comes back at the same address: nginx resolves upstream names once, at start-up, and
would otherwise never see a restarted service again (a deployment concern, not a balancing one).
"""

import contextlib
import ipaddress
import random
import socket
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx
from docker.errors import APIError
from docker.models.containers import Container
from docker.models.networks import Network as DockerNetwork
from docker.types import EndpointConfig, IPAMConfig, IPAMPool
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from tests.harness import docker_env
from tests.harness.gateways import STORAGE_IMAGE, STORAGE_NAMES, GatewaySpec
from tests.harness.readiness import LoopbackHealth, published_port, wait_healthy
from tests.harness.wire import Wire
from toolkit.faults import received, reset_received
from toolkit.serving import serves_from_all
from toolkit.status import GatewayStatus, ServiceStatus, fetch_status
from toolkit.storage_control import STORAGE_PORT, StorageContainer
from toolkit.waiting import wait_until

# docker-py binds (host_ip, None) to a random port on that address; testcontainers' type for
# `ports` is narrower than what it passes through.
LOOPBACK_RANDOM_PORT = ("127.0.0.1", None)

STARTUP_TIMEOUT = 60.0
"""Seconds a container may take to answer /health after starting (generous: 2-core CI box)."""


@dataclass
class Storage:
    name: str
    ip: str
    container: DockerContainer
    control: StorageContainer

    @property
    def docker(self) -> Container:
        wrapped: Container = self.container.get_wrapped_container()
        return wrapped

    @property
    def url(self) -> str:
        """The base URL the gateway uses (service name on the private network)."""
        return f"http://{self.name}:{STORAGE_PORT}"


def _api_version(engine: docker.DockerClient) -> str:
    version: str = engine.api.api_version
    return version


class Stack:
    """Start, control, observe and reset one gateway over three storage services."""

    def __init__(self, spec: GatewaySpec) -> None:
        self.spec = spec
        self.engine = docker_env.client()
        self.network: Network | None = None
        self.subnet: ipaddress.IPv4Network | None = None
        self.storages: dict[str, Storage] = {}
        self.gateway: DockerContainer | None = None
        self.custom_gateway: DockerContainer | None = None
        """A gateway a scenario started with its own settings (`use_settings`), serving in the
        suite's one's place until `reset`."""
        self.base_url = ""
        self.admin_url = ""
        """The runtime API's address on 127.0.0.1, for a gateway that has one."""
        # With several workers every request is a new connection, so the kernel spreads them
        # over the workers; one kept-alive connection would stay with one worker.
        limits = httpx.Limits(max_keepalive_connections=0 if spec.workers > 1 else None)
        self.http = httpx.Client(timeout=10.0, limits=limits)
        self.dirty = False
        """Set by every control action; `reset` then restarts the gateway for a clean slate."""

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self.network = self._create_network()
        for index, name in enumerate(STORAGE_NAMES, start=1):
            self.storages[name] = self._start_storage(name, self._address(10 + index))
        self.gateway = self._start_gateway()

    def close(self) -> None:
        self.http.close()
        containers = [self.custom_gateway, self.gateway]
        for container in [*containers, *(s.container for s in self.storages.values())]:
            if container is not None:
                with contextlib.suppress(Exception):
                    container.stop()
        if self.network is not None:
            with contextlib.suppress(Exception):
                self.network.remove()
        self.engine.close()

    def _address(self, host: int) -> str:
        assert self.subnet is not None
        return str(self.subnet.network_address + host)

    def _create_network(self) -> Network:
        # A /24 outside Docker's default address pools; dynamic addresses (the gateway) come
        # from the upper half, so they never take a stopped storage service's fixed address.
        last_error: APIError | None = None
        for _ in range(20):
            subnet = ipaddress.IPv4Network(f"10.213.{random.randrange(1, 255)}.0/24")
            ipam = IPAMConfig(
                pool_configs=[
                    IPAMPool(
                        subnet=str(subnet),
                        iprange=f"{subnet.network_address + 128}/25",
                        gateway=str(subnet.network_address + 1),
                    )
                ]
            )
            network = Network(docker_network_kw={"labels": docker_env.run_labels(), "ipam": ipam})
            try:
                network.create()
            except APIError as error:
                last_error = error
                continue
            self.subnet = subnet
            return network
        raise RuntimeError(f"could not create a private test network: {last_error}")

    def _endpoint(self, alias: str, ip: str | None) -> dict[str, Any]:
        assert self.network is not None
        return {
            self.network.name: EndpointConfig(
                _api_version(self.engine), aliases=[alias], ipv4_address=ip
            )
        }

    def _start_storage(self, name: str, ip: str) -> Storage:
        assert self.network is not None
        container = (
            DockerContainer(STORAGE_IMAGE)
            .with_env("INSTANCE_NAME", name)
            .with_env("ENABLE_FAULT_INJECTION", "true")
            .with_network(self.network)
            .with_kwargs(
                labels=docker_env.run_labels(),
                networking_config=self._endpoint(name, ip),
                hostname=name,
            )
            .waiting_for(LoopbackHealth(STORAGE_PORT, STARTUP_TIMEOUT))
        )
        # Published only on loopback, on a random port: the fault-injection endpoint.
        container.ports[f"{STORAGE_PORT}/tcp"] = LOOPBACK_RANDOM_PORT  # type: ignore[assignment]
        container.start()
        control = StorageContainer(
            name, container.get_wrapped_container(), self._docker_network(), ip
        )
        return Storage(name=name, ip=ip, container=container, control=control)

    def _start_gateway(self, overrides: Mapping[str, object] | None = None) -> DockerContainer:
        assert self.network is not None
        spec = self.spec
        urls = [s.url for s in self.storages.values()]
        container = (
            DockerContainer(spec.image)
            .with_envs(**spec.environment(urls, overrides))
            .with_network(self.network)
            .with_kwargs(
                labels=docker_env.run_labels(),
                networking_config=self._endpoint("gateway", None),
            )
            .waiting_for(LoopbackHealth(spec.port, STARTUP_TIMEOUT))
        )
        container.ports[f"{spec.port}/tcp"] = LOOPBACK_RANDOM_PORT  # type: ignore[assignment]
        if spec.admin_port is not None:
            container.ports[f"{spec.admin_port}/tcp"] = LOOPBACK_RANDOM_PORT  # type: ignore[assignment]
        container.start()
        self._point_at(container)
        return container

    def _point_at(self, gateway: DockerContainer) -> None:
        wrapped = gateway.get_wrapped_container()
        port = published_port(wrapped, self.spec.port)
        assert port is not None, "the gateway's port is not published"
        self.base_url = f"http://127.0.0.1:{port}"
        if self.spec.admin_port is not None:
            admin = published_port(wrapped, self.spec.admin_port)
            assert admin is not None, "the runtime API's port is not published"
            self.admin_url = f"http://127.0.0.1:{admin}"

    def use_settings(self, **overrides: object) -> None:
        """Serve from a gateway started with these common settings on top of the suite's (those
        it does not honour are dropped, so a gateway without the feature runs without it);
        `reset` goes back to the suite's gateway."""
        self.dirty = True
        self._drop_custom_gateway()
        self.custom_gateway = self._start_gateway(overrides)
        self.wait_all_available()

    def _drop_custom_gateway(self) -> None:
        if self.custom_gateway is None:
            return
        with contextlib.suppress(Exception):
            self.custom_gateway.stop()
        self.custom_gateway = None
        assert self.gateway is not None
        self._point_at(self.gateway)

    # -- talking to the gateway ------------------------------------------------------------

    def url(self, path: str) -> str:
        return self.base_url + path

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(self.url(path), **kwargs)

    def gateway_status(self) -> GatewayStatus:
        if not self.spec.has_status:
            raise AssertionError(f"{self.spec.name} serves no /status (its capabilities say so)")
        return fetch_status(self.base_url, timeout=10.0)

    def status(self) -> dict[str, Any]:
        """The /status document as sent (scenario 7 checks its exact shape)."""
        return dict(self.gateway_status().document)

    def service_status(self, name: str) -> ServiceStatus:
        url = self.storages[name].url
        service = self.gateway_status().service(url)
        if service is None:
            raise AssertionError(f"{url} is not listed in /status")
        return service

    def wait_service_status(self, name: str, status: str, timeout: float) -> float:
        """Wait until /status reports `status` for one service; return the seconds it took."""
        started = time.monotonic()
        wait_until(
            lambda: self.service_status(name).status == status,
            timeout=timeout,
            what=f"/status to report {name} {status}",
        )
        return time.monotonic() - started

    def instances(self, count: int) -> list[str]:
        """Send `count` sequential GET /data; return who served each (all must be 200)."""
        served = []
        for _ in range(count):
            response = self.get("/data")
            assert response.status_code == 200, (
                f"GET /data answered {response.status_code}: {response.text[:200]}"
            )
            served.append(str(response.json()["instance"]))
        return served

    def tally(self, count: int) -> Counter[str]:
        return Counter(self.instances(count))

    def wire(self) -> Wire:
        """Watch the requests the gateway sends to each storage service (needs root).

        Frames between two containers never reach the bridge device itself, so the capture
        listens on the host side of the gateway container's veth pair.
        """
        gateway = self.custom_gateway or self.gateway
        assert gateway is not None
        container = gateway.get_wrapped_container()
        container.reload()
        pid = container.attrs["State"]["Pid"]
        iflink = Path(f"/proc/{pid}/root/sys/class/net/eth0/iflink").read_text().strip()
        targets = {s.ip: name for name, s in self.storages.items()}
        return Wire(socket.if_indextoname(int(iflink)), targets, STORAGE_PORT)

    # -- controlling storage services ------------------------------------------------------

    def kill(self, name: str) -> None:
        self.dirty = True
        self.storages[name].control.kill()

    def stop(self, name: str) -> None:
        self.dirty = True
        self.storages[name].control.stop()

    def start_storage(self, name: str) -> None:
        """Start a stopped/killed service and wait until it answers /health itself."""
        self.dirty = True
        self.storages[name].control.start()
        self._wait_storage_healthy(name)

    def pause(self, name: str) -> None:
        self.dirty = True
        self.storages[name].control.pause()

    def unpause(self, name: str) -> None:
        self.dirty = True
        self.storages[name].control.unpause()

    def disconnect(self, name: str) -> None:
        self.dirty = True
        self.storages[name].control.disconnect()

    def connect(self, name: str) -> None:
        self.dirty = True
        self.storages[name].control.connect()

    def set_fault(self, name: str, mode: str, delay_ms: int | None = None) -> None:
        self.dirty = mode != "normal" or self.dirty
        self.storages[name].control.set_fault(mode, delay_ms)

    def storage_url(self, name: str) -> str:
        """A storage service's own port on 127.0.0.1 (its fault and request-count endpoints)."""
        port = published_port(self.storages[name].docker, STORAGE_PORT)
        assert port is not None, f"{name}'s port is not published"
        return f"http://127.0.0.1:{port}"

    def received(self, name: str) -> int:
        """The `/data` requests a storage service received since `reset_received`."""
        return received(name, self.storage_url(name))[0]

    def traceparent_received(self, name: str) -> str | None:
        """The `traceparent` header of the last `/data` request a storage service received."""
        return received(name, self.storage_url(name))[1]

    def reset_received(self) -> None:
        """Count every storage service's `/data` requests from zero."""
        for name in self.storages:
            reset_received(name, self.storage_url(name))

    def _docker_network(self) -> DockerNetwork:
        assert self.network is not None
        assert self.network.id is not None
        network: DockerNetwork = self.engine.networks.get(self.network.id)
        return network

    def _wait_storage_healthy(self, name: str) -> None:
        wait_healthy(self.storages[name].docker, STORAGE_PORT, timeout=STARTUP_TIMEOUT)

    # -- back to a known state -------------------------------------------------------------

    def reset(self) -> None:
        """All storage services running, unpaused, connected and normal; a fresh gateway that
        sees all three available. Cheap when the previous test changed nothing."""
        if self.dirty:
            self._drop_custom_gateway()
            for name, storage in self.storages.items():
                storage.control.restore()
                container = storage.docker
                # Up first (the admin endpoint answers in every fault mode), then back to normal.
                wait_healthy(container, STORAGE_PORT, path="/admin/fault", timeout=STARTUP_TIMEOUT)
                self.set_fault(name, "normal")
                self._wait_storage_healthy(name)
            self._restart_gateway()
            self.dirty = False
        self.wait_all_available()

    def _restart_gateway(self) -> None:
        assert self.gateway is not None
        container = self.gateway.get_wrapped_container()
        container.restart(timeout=2)
        wait_healthy(container, self.spec.port, timeout=STARTUP_TIMEOUT)
        self._point_at(self.gateway)

    def wait_all_available(self) -> None:
        timing = self.spec.timing
        interval = timing.health_interval or 0.0
        timeout = 10.0 + interval * timing.health_rise
        if self.spec.has_status:
            wait_until(
                lambda: self.gateway_status().available == len(self.storages),
                timeout=timeout,
                what="/status to report every storage service available",
            )
            return
        # No /status: judged by traffic alone, a full rotation of 200s from every service.
        wait_until(
            lambda: serves_from_all(self.base_url, len(self.storages)),
            timeout=timeout,
            what="every storage service to serve a request in one rotation",
        )

    def logs(self) -> str:
        gateway = self.custom_gateway or self.gateway
        assert gateway is not None
        out: bytes = gateway.get_wrapped_container().logs(tail=60)
        return out.decode(errors="replace")
