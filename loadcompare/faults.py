"""Making storage services fail and come back, through the Docker API, in one compose project only.

Containers are found by their compose labels, never by name patterns across the engine: other
projects' containers on the same engine are left alone.
"""

from __future__ import annotations

from typing import Any

import docker
from docker.errors import DockerException
from docker.models.containers import Container

from loadcompare.targets import deploy_commands
from storage_service.faults import FaultMode
from toolkit.faults import FaultError
from toolkit.storage_control import StorageContainer

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
STORAGE_PREFIX = "storage"
BROWN_OUT_DELAY_MS = 200
"""How slow every storage service answers in the brown-out (and every second answer is a 500)."""


def docker_client() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except DockerException as error:
        raise FaultError(f"cannot reach the Docker engine: {error}") from None
    return client


def project_publishing(client: docker.DockerClient, host_port: int) -> str:
    """The compose project of the container that publishes `host_port` on the host."""
    for container in client.containers.list(filters={"label": PROJECT_LABEL}):
        ports: dict[str, Any] = container.attrs["NetworkSettings"]["Ports"] or {}
        for bindings in ports.values():
            for binding in bindings or []:
                if binding.get("HostPort") == str(host_port):
                    return str(container.labels[PROJECT_LABEL])
    raise FaultError(
        f"no compose container publishes port {host_port}; start the deployment "
        f"({deploy_commands()}) or pass --compose-project"
    )


def storage_containers(client: docker.DockerClient, project: str) -> dict[str, Container]:
    """The project's storage service containers by service name, running or not."""
    found = client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"})
    storages = {
        str(c.labels.get(SERVICE_LABEL, "")): c
        for c in found
        if str(c.labels.get(SERVICE_LABEL, "")).startswith(STORAGE_PREFIX)
    }
    if not storages:
        raise FaultError(f"compose project {project!r} has no {STORAGE_PREFIX}* service")
    return dict(sorted(storages.items()))


def instance_name(container: Container) -> str:
    """The name the service reports in `instance`: INSTANCE_NAME, else the host name."""
    config: dict[str, Any] = container.attrs["Config"]
    for entry in config.get("Env") or []:
        key, _, value = str(entry).partition("=")
        if key == "INSTANCE_NAME" and value:
            return value
    return str(config["Hostname"])


class Faults:
    """Fails storage containers and remembers what it did, so it can always undo it."""

    def __init__(self, containers: dict[str, Container]) -> None:
        self._storages = {name: StorageContainer(name, c) for name, c in containers.items()}
        self._killed: set[str] = set()
        self._faulted: set[str] = set()

    def kill(self, service: str) -> None:
        self._storage(service).kill()
        self._killed.add(service)

    def make_unavailable(self, service: str) -> None:
        self._storage(service).set_fault(FaultMode.UNAVAILABLE)
        self._faulted.add(service)

    def brown_out(self, service: str) -> None:
        self._storage(service).set_fault(FaultMode.FLAKY, BROWN_OUT_DELAY_MS)
        self._faulted.add(service)

    def received(self, service: str) -> int:
        """The `/data` requests one storage service has received since it started."""
        return self._storage(service).received()

    def restore(self, service: str) -> None:
        """Undo what was done to one service: start it again, or set its fault mode to normal."""
        if service in self._killed:
            self._storage(service).start()
            self._killed.discard(service)
        if service in self._faulted:
            self._storage(service).set_fault(FaultMode.NORMAL)
            self._faulted.discard(service)

    def undo(self) -> None:
        """Restore everything this object broke; safe to call twice."""
        for service in sorted(self._killed | self._faulted):
            self.restore(service)

    @property
    def active(self) -> bool:
        return bool(self._killed or self._faulted)

    def check_fault_injection(self, service: str) -> None:
        """Raises FaultError when the service's fault endpoint is off (where the host can tell)."""
        self._storage(service).check_fault_injection()

    def _storage(self, service: str) -> StorageContainer:
        try:
            return self._storages[service]
        except KeyError:
            known = ", ".join(self._storages)
            raise FaultError(f"no storage service {service!r} (known: {known})") from None
