"""Driving a deployed stack's `storage` service: scale, roll, kill a task, and wait for the result.

Deploying and removing stacks is scripts/swarm.sh's job (the Makefile's too); this module only
changes a running stack, through the Docker API, and waits on conditions with a deadline.
"""

import json
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import docker

REPO = Path(__file__).resolve().parents[2]
SWARM_SCRIPT = REPO / "scripts" / "swarm.sh"


@dataclass(frozen=True, slots=True)
class Task:
    instance: str
    """The storage replica's INSTANCE_NAME: `{{.Task.Name}}`, i.e. `<service>.<slot>.<task id>`."""
    running_since: float
    """Wall-clock time swarm reported the task running (after its healthcheck passed)."""
    container_id: str


def deploy(stack: str, stack_file: str, url: str, timeout: int = 120) -> None:
    """scripts/swarm.sh deploy: init a swarm if none is active, deploy, wait until ready."""
    _run([str(SWARM_SCRIPT), "deploy", stack, stack_file, url, str(timeout)])


def remove(stack: str) -> None:
    """scripts/swarm.sh remove: remove the stack and wait until its network is gone."""
    _run([str(SWARM_SCRIPT), "remove", stack])


def _run(command: list[str]) -> None:
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[1:3])} failed:\n{result.stdout}{result.stderr}")


class Storage:
    """The `storage` service of one stack, driven through the docker CLI (its JSON output is
    what the Docker API returns; the Python SDK's service calls are untyped)."""

    def __init__(self, stack: str) -> None:
        self.name = f"{stack}_storage"

    def _tasks(self, desired: str | None = None) -> list[dict[str, Any]]:
        wanted = ["--filter", f"desired-state={desired}"] if desired else []
        # A task listed can be gone (scaled away) before it is inspected: list again.
        for _ in range(10):
            ids = _docker("service", "ps", "-q", "--no-trunc", *wanted, self.name).split()
            if not ids:
                return []
            try:
                tasks: list[dict[str, Any]] = json.loads(_docker("inspect", "--type", "task", *ids))
            except RuntimeError as error:
                if "not found" not in str(error):
                    raise
                continue
            return tasks
        raise AssertionError(f"the tasks of {self.name} kept changing under `docker inspect`")

    def running(self) -> dict[str, Task]:
        """Tasks that should run and do, by instance name."""
        tasks: dict[str, Task] = {}
        for task in self._tasks("running"):
            status: dict[str, Any] = task["Status"]
            if status["State"] != "running":
                continue
            instance = f"{self.name}.{task['Slot']}.{task['ID']}"
            tasks[instance] = Task(
                instance=instance,
                running_since=_timestamp(status["Timestamp"]),
                container_id=status["ContainerStatus"]["ContainerID"],
            )
        return tasks

    def scale(self, replicas: int, timeout: float) -> None:
        _docker("service", "scale", "--detach", f"{self.name}={replicas}")
        self.wait_converged(replicas, timeout)

    def roll(self, replicas: int, timeout: float) -> None:
        """`docker service update --force`: every task replaced, start-first, one at a time."""
        _docker("service", "update", "--detach", "--force", self.name)
        deadline = time.monotonic() + timeout
        while (state := self._update_state()) not in ("completed", None):
            if state in ("paused", "rollback_completed", "rollback_paused"):
                raise AssertionError(f"the rolling update of {self.name} ended {state}")
            _before(deadline, f"the rolling update of {self.name} to complete")
        self.wait_converged(replicas, deadline - time.monotonic())

    def kill_one(self, replicas: int, timeout: float) -> Task:
        """`docker kill` one running task's container; swarm's restart policy replaces it."""
        victim = min(self.running().values(), key=lambda task: task.instance)
        _docker("kill", victim.container_id)
        deadline = time.monotonic() + timeout
        while victim.instance in self.running():
            _before(deadline, f"swarm to notice that {victim.instance} was killed")
        self.wait_converged(replicas, deadline - time.monotonic())
        return victim

    def wait_converged(self, replicas: int, timeout: float) -> None:
        """Until exactly `replicas` tasks run and no task being shut down still runs."""
        deadline = time.monotonic() + timeout
        while True:
            running = self.running()
            # Tasks being scaled away or replaced (desired state shutdown or remove) that still run.
            leftovers = [
                task
                for task in self._tasks()
                if task["DesiredState"] != "running"
                and task["Status"]["State"] in ("running", "starting", "preparing")
            ]
            if len(running) == replicas and not leftovers:
                return
            _before(deadline, f"{self.name} to run {replicas} tasks (now {len(running)})")

    def _update_state(self) -> str | None:
        found = _docker("service", "inspect", "--format", "{{json .UpdateStatus}}", self.name)
        update: dict[str, Any] | None = json.loads(found)
        return None if update is None else str(update.get("State"))


def _docker(*args: str) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def _before(deadline: float, what: str) -> None:
    """Poll step: fail with `what` once the deadline has passed, else wait a moment."""
    if time.monotonic() >= deadline:
        raise AssertionError(f"timed out waiting for {what}")
    time.sleep(0.25)


def _timestamp(value: str) -> float:
    """Docker's RFC 3339 time with nanoseconds -> epoch seconds."""
    head, _, rest = value.removesuffix("Z").partition(".")
    fraction = "".join(ch for ch in rest if ch.isdigit())[:6]
    return datetime.fromisoformat(f"{head}.{fraction or '0'}+00:00").timestamp()


def nginx_reloads(stack: str) -> int:
    """How often the nginx task's re-resolution loop reloaded nginx (its log lines say so)."""
    engine = docker.from_env()
    reloads = 0
    for container in engine.containers.list(
        filters={"label": f"com.docker.swarm.service.name={stack}_nginx"}
    ):
        logs = container.logs(stdout=True, stderr=True).decode(errors="replace")
        reloads += logs.count("reloading nginx")
    return reloads


def service_logs(stack: str, service: str) -> str:
    """The service's log lines (every task's), with docker's timestamps."""
    result = subprocess.run(
        ["docker", "service", "logs", "--timestamps", "--no-task-ids", f"{stack}_{service}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout + result.stderr
