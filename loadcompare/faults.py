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
from toolkit.faults import FaultError, check_fault_status, fault_request

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
STORAGE_PREFIX = "storage"

# Runs inside the storage container, so the fault endpoint is reached on the container's own
# loopback: it works whatever the network (Docker Desktop cannot route to container addresses).
_PUT_FAULT = """
import json, sys, urllib.error, urllib.request
request = urllib.request.Request(
    "http://127.0.0.1:8000/admin/fault",
    data=json.dumps({"mode": sys.argv[1]}).encode(),
    headers={"Content-Type": "application/json"},
    method="PUT",
)
try:
    urllib.request.urlopen(request, timeout=5).read()
except urllib.error.HTTPError as error:
    print(error.code)
    sys.exit(3)
"""


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
        self._containers = containers
        self._killed: set[str] = set()
        self._faulted: set[str] = set()

    def kill(self, service: str) -> None:
        container = self._container(service)
        try:
            container.kill()
        except DockerException as error:
            raise FaultError(f"cannot kill {service}: {error}") from None
        self._killed.add(service)

    def make_unavailable(self, service: str) -> None:
        self._put_fault(service, "unavailable")
        self._faulted.add(service)

    def restore(self, service: str) -> None:
        """Undo what was done to one service: start it again, or set its fault mode to normal."""
        if service in self._killed:
            try:
                self._container(service).start()
            except DockerException as error:
                raise FaultError(f"cannot start {service} again: {error}") from None
            self._killed.discard(service)
        if service in self._faulted:
            self._put_fault(service, "normal")
            self._faulted.discard(service)

    def undo(self) -> None:
        """Restore everything this object broke; safe to call twice."""
        for service in sorted(self._killed | self._faulted):
            self.restore(service)

    @property
    def active(self) -> bool:
        return bool(self._killed or self._faulted)

    def _container(self, service: str) -> Container:
        try:
            return self._containers[service]
        except KeyError:
            known = ", ".join(self._containers)
            raise FaultError(f"no storage service {service!r} (known: {known})") from None

    def check_fault_injection(self, service: str) -> None:
        """Raises FaultError when the service's fault endpoint is off (where the host can tell)."""
        status = _by_address(self._container(service), None)
        if status is not None:
            check_fault_status(service, status)

    def _put_fault(self, service: str, mode: str) -> None:
        # Straight to the container's address when the host can route to it (Linux): it takes
        # milliseconds, so the fault starts when the run says it does. Otherwise (Docker Desktop)
        # through `docker exec`, which can take seconds on a loaded machine.
        container = self._container(service)
        status = _by_address(container, mode)
        if status is None:
            self._put_fault_by_exec(service, container, mode)
        else:
            check_fault_status(service, status)

    def _put_fault_by_exec(self, service: str, container: Container, mode: str) -> None:
        try:
            result = container.exec_run(["python", "-c", _PUT_FAULT, mode])
        except DockerException as error:
            raise FaultError(f"cannot reach {service}'s fault endpoint: {error}") from None
        if result.exit_code == 0:
            return
        raw = result.output if isinstance(result.output, bytes) else b""
        output = raw.decode(errors="replace").strip()
        check_fault_status(service, int(output) if output.isdigit() else None, output)


def _by_address(container: Container, mode: str | None) -> int | None:
    """The fault endpoint's status, through the first of the container's addresses that
    answers; None when the host reaches none of them."""
    container.reload()
    for address in _addresses(container):
        try:
            return fault_request(f"http://{address}:8000", mode, timeout=2)
        except OSError:
            continue
    return None


def _addresses(container: Container) -> list[str]:
    networks: dict[str, Any] = container.attrs["NetworkSettings"].get("Networks") or {}
    return [str(n["IPAddress"]) for n in networks.values() if n.get("IPAddress")]
