"""Readiness: a container is ready when its /health answers 200 on its loopback-published port.

The container-specific part of waiting (the port Docker publishes, an exited container);
the polling itself is toolkit.waiting's.
"""

from docker.models.containers import Container
from testcontainers.core.waiting_utils import WaitStrategy, WaitStrategyTarget

from toolkit.waiting import ConditionTimeout, http_status, wait_until


class ContainerExited(RuntimeError):
    """The container stopped while we waited for it (usually a configuration error)."""


def published_port(container: Container, port: int) -> int | None:
    """The 127.0.0.1 port Docker published for a container port (changes on restart)."""
    container.reload()
    bindings = (container.attrs["NetworkSettings"].get("Ports") or {}).get(f"{port}/tcp")
    if not bindings:
        return None
    return int(bindings[0]["HostPort"])


def wait_healthy(container: Container, port: int, *, path: str = "/health", timeout: float) -> None:
    """Poll http://127.0.0.1:<published port><path> until 200; fail fast if the container exits."""

    last = "no attempt yet"

    def ready() -> bool:
        nonlocal last
        host_port = published_port(container, port)
        if container.status in ("exited", "dead"):
            logs = container.logs(tail=20).decode(errors="replace").strip()
            raise ContainerExited(f"{container.name} exited before becoming ready:\n{logs}")
        if host_port is None:
            last = f"no published port (container {container.status})"
            return False
        try:
            code = http_status(f"http://127.0.0.1:{host_port}{path}")
        except OSError as error:
            last = f"127.0.0.1:{host_port}: {error!r}"
            return False
        last = f"127.0.0.1:{host_port}: HTTP {code}"
        return code == 200

    try:
        wait_until(ready, timeout=timeout, interval=0.1, what=f"{container.name} to answer {path}")
    except ConditionTimeout as error:
        raise ConditionTimeout(f"{error}; last attempt: {last}") from None


class LoopbackHealth(WaitStrategy):
    """testcontainers wait strategy for `wait_healthy` (its HttpWaitStrategy guesses the host
    address from the Docker connection mode; the suite always publishes on 127.0.0.1)."""

    def __init__(self, port: int, timeout: float, path: str = "/health") -> None:
        super().__init__()
        self.port = port
        self.path = path
        self.timeout = timeout

    def wait_until_ready(self, container: WaitStrategyTarget) -> None:
        wrapped: Container = container.get_wrapped_container()
        wait_healthy(wrapped, self.port, path=self.path, timeout=self.timeout)
