"""Making one storage service container fail and come back, the same way for every tool.

The contract suite (its own containers on a private network) and the load comparison (a compose
project's containers) break storage services through this class; the bench's storage services
are plain processes on loopback and only ever get SIGKILL (bench/targets.StoragePool).

Docker errors become FaultError with one line naming the service, never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from docker.errors import DockerException
from docker.models.containers import Container
from docker.models.networks import Network

from storage_service.faults import FaultMode
from toolkit.faults import FaultError, check_fault_status, fault_request, received

STORAGE_PORT = 8000
"""The port a storage service listens on inside its container."""

# Runs inside the storage container, so the fault endpoint is reached on the container's own
# loopback: it works whatever the network (Docker Desktop cannot route to container addresses).
_PUT_FAULT = f"""
import sys, urllib.error, urllib.request
request = urllib.request.Request(
    "http://127.0.0.1:{STORAGE_PORT}/admin/fault",
    data=sys.argv[1].encode(),
    headers={{"Content-Type": "application/json"}},
    method="PUT",
)
try:
    urllib.request.urlopen(request, timeout=5).read()
except urllib.error.HTTPError as error:
    print(error.code)
    sys.exit(3)
"""

T = TypeVar("T")


class StorageContainer:
    """One storage service's container: kill, stop, start, pause, disconnect, fault, restore.

    `network` is the network `disconnect`/`connect` act on, rejoined with the service's name as
    alias and, when `ip` is given, the same fixed address (nginx resolves names only at start).
    """

    def __init__(
        self, name: str, container: Container, network: Network | None = None, ip: str | None = None
    ) -> None:
        self.name = name
        self.container = container
        self.network = network
        self.ip = ip

    def kill(self) -> None:
        self._docker("kill", self.container.kill)

    def stop(self, timeout: int = 1) -> None:
        self._docker("stop", lambda: self.container.stop(timeout=timeout))

    def start(self) -> None:
        self._docker("start", self.container.start)

    def pause(self) -> None:
        self._docker("pause", self.container.pause)

    def unpause(self) -> None:
        self._docker("unpause", self.container.unpause)

    def disconnect(self) -> None:
        network = self._network()
        self._docker("disconnect", lambda: network.disconnect(self.container, force=True))

    def connect(self) -> None:
        network = self._network()
        self._docker(
            "connect",
            lambda: network.connect(self.container, aliases=[self.name], ipv4_address=self.ip),
        )

    def set_fault(self, mode: FaultMode | str, delay_ms: int | None = None) -> None:
        """Switch the service to `mode`. Straight to the container's address when the host can
        route to it (Linux): milliseconds, so a fault starts when the caller says it does.
        Otherwise (Docker Desktop) through `docker exec`, which can take seconds."""
        status = self._by_address(mode, delay_ms)
        if status is None:
            self._set_fault_by_exec(mode, delay_ms)
        else:
            check_fault_status(self.name, status)

    def received(self) -> int:
        """The `/data` requests the service received since it started (its own count, through
        its fault endpoint's neighbour `GET /admin/requests`); FaultError when unreachable."""
        last = FaultError(f"{self.name}: no address the host can reach")
        for address in self.addresses():
            try:
                return received(self.name, f"http://{address}:{STORAGE_PORT}", timeout=2)[0]
            except FaultError as error:
                last = error
        raise last

    def check_fault_injection(self) -> None:
        """FaultError when the fault endpoint is off (where the host can tell)."""
        status = self._by_address(None, None)
        if status is not None:
            check_fault_status(self.name, status)

    @property
    def state(self) -> str:
        """Docker's status: running, paused, exited, ..."""
        self._docker("inspect", self.container.reload)
        return str(self.container.status)

    def attached(self) -> bool:
        """Whether the container is on `network` (always true without one)."""
        if self.network is None:
            return True
        self._docker("inspect", self.container.reload)
        networks: dict[str, Any] = self.container.attrs["NetworkSettings"]["Networks"] or {}
        return self.network.name in networks

    def restore(self) -> None:
        """Running, unpaused and on its network again, whatever was done to it (its fault mode
        is the caller's: the endpoint needs the process up, which may take a moment)."""
        state = self.state
        if state == "paused":
            self.unpause()
        elif state != "running":
            self.start()
        if not self.attached():
            self.connect()

    def _network(self) -> Network:
        if self.network is None:
            raise FaultError(f"{self.name}: no network given to disconnect it from")
        return self.network

    def _docker(self, action: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except DockerException as error:
            raise FaultError(f"cannot {action} {self.name}: {error}") from None

    def addresses(self) -> list[str]:
        """The container's addresses, one per network it is on."""
        self._docker("inspect", self.container.reload)
        networks: dict[str, Any] = self.container.attrs["NetworkSettings"].get("Networks") or {}
        return [str(n["IPAddress"]) for n in networks.values() if n.get("IPAddress")]

    def _by_address(self, mode: FaultMode | str | None, delay_ms: int | None) -> int | None:
        """The fault endpoint's status through the first of the container's addresses that
        answers; None when the host reaches none of them."""
        for address in self.addresses():
            try:
                return fault_request(f"http://{address}:{STORAGE_PORT}", mode, delay_ms, timeout=2)
            except OSError:
                continue
        return None

    def _set_fault_by_exec(self, mode: FaultMode | str, delay_ms: int | None) -> None:
        body: dict[str, object] = {"mode": str(mode)}
        if delay_ms is not None:
            body["delay_ms"] = delay_ms
        result = self._docker(
            "reach the fault endpoint of",
            lambda: self.container.exec_run(["python", "-c", _PUT_FAULT, json.dumps(body)]),
        )
        if result.exit_code == 0:
            return
        raw = result.output if isinstance(result.output, bytes) else b""
        output = raw.decode(errors="replace").strip()
        check_fault_status(self.name, int(output) if output.isdigit() else None, output)
