"""The Docker side of the harness: reachability, Ryuk, labels and guaranteed cleanup.

Every container and network the suite creates carries `RUN_LABEL=<this run's id>`, so a run
removes exactly what it made, and nothing belonging to anyone else, even after a failure,
Ctrl-C or SIGTERM. A run that was SIGKILLed leaves its containers behind; the next run removes
those whose owning process is gone (`PID_LABEL`/`HOST_LABEL`).
"""

import atexit
import gc
import os
import signal
import socket
import uuid
import warnings
from types import FrameType

import docker
from docker.errors import DockerException, NotFound

SUITE_LABEL = "com.service-assembly.suite"
RUN_LABEL = "com.service-assembly.test-run"
PID_LABEL = "com.service-assembly.test-pid"
HOST_LABEL = "com.service-assembly.test-host"
SUITE_NAME = "contract"

RUN_ID = uuid.uuid4().hex[:12]


def disable_ryuk_unless_configured() -> None:
    """Ryuk (testcontainers' reaper) needs an image pulled from a registry; our cleanup is by label.

    A user who has Ryuk available and wants it can still set TESTCONTAINERS_RYUK_DISABLED=false.
    """
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")


def run_labels() -> dict[str, str]:
    return {
        SUITE_LABEL: SUITE_NAME,
        RUN_LABEL: RUN_ID,
        PID_LABEL: str(os.getpid()),
        HOST_LABEL: socket.gethostname(),
    }


def client() -> docker.DockerClient:
    return docker.from_env(timeout=30)


def unreachable_reason() -> str | None:
    """None when a Docker engine answers; otherwise one line saying why not."""
    # docker-py leaks its socket when the engine is absent; collect it here, quietly, rather
    # than let a ResourceWarning surface later as an unrelated test error.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        reason = _ping()
        gc.collect()
    return reason


def _ping() -> str | None:
    # A fixed (old) API version: "auto" would query the engine inside the constructor.
    engine = docker.from_env(version="1.24", timeout=5)
    try:
        engine.ping()
    except Exception as error:  # any failure to reach the engine means the same thing here
        text = str(error).strip()
        return (
            f"no Docker engine reachable ({text.splitlines()[0] if text else type(error).__name__})"
        )
    finally:
        engine.close()
    return None


def remove_labelled(engine: docker.DockerClient, label_filter: str) -> int:
    """Remove every container, then every network, matching a label filter; return how many."""
    removed = 0
    for container in engine.containers.list(all=True, filters={"label": label_filter}):
        try:
            container.remove(force=True, v=True)
            removed += 1
        except NotFound:
            pass
    for network in engine.networks.list(filters={"label": label_filter}):
        try:
            network.remove()
            removed += 1
        except NotFound:
            pass
    return removed


def remove_this_run() -> None:
    """Remove what this run created; safe to call more than once and with no engine."""
    try:
        engine = client()
    except DockerException:
        return
    try:
        remove_labelled(engine, f"{RUN_LABEL}={RUN_ID}")
    except DockerException:
        pass
    finally:
        engine.close()


def remove_orphans(engine: docker.DockerClient) -> None:
    """Remove leftovers of earlier runs on this host whose pytest process no longer exists."""
    host = socket.gethostname()
    runs: dict[str, int] = {}
    for container in engine.containers.list(
        all=True, filters={"label": f"{SUITE_LABEL}={SUITE_NAME}"}
    ):
        labels = container.labels
        if labels.get(HOST_LABEL) == host and labels.get(PID_LABEL, "").isdigit():
            runs[labels[RUN_LABEL]] = int(labels[PID_LABEL])
    for network in engine.networks.list(filters={"label": f"{SUITE_LABEL}={SUITE_NAME}"}):
        labels = network.attrs.get("Labels") or {}
        if labels.get(HOST_LABEL) == host and labels.get(PID_LABEL, "").isdigit():
            runs[labels[RUN_LABEL]] = int(labels[PID_LABEL])
    for run_id, pid in runs.items():
        if run_id != RUN_ID and not _process_alive(pid):
            remove_labelled(engine, f"{RUN_LABEL}={run_id}")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _terminate(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM into the same path as Ctrl-C: pytest tears fixtures down, then atexit runs.
    raise KeyboardInterrupt(f"signal {signum}")


def install_cleanup() -> None:
    """Guarantee `remove_this_run` at interpreter exit, also on SIGTERM."""
    atexit.register(remove_this_run)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)
