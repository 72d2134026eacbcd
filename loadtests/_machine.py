"""What a reader needs to rerun a comparison: machine, versions, and the gateways' settings."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from docker.errors import DockerException

from loadtests._faults import PROJECT_LABEL, SERVICE_LABEL, FaultError, docker_client

# Contract settings worth stating; anything else in a container's environment is left out.
SETTING_NAMES = (
    "STORAGE_SERVICES",
    "CONNECT_TIMEOUT",
    "READ_TIMEOUT",
    "MAX_FAILS",
    "FAIL_TIMEOUT",
    "HEALTH_INTERVAL",
    "HEALTH_TIMEOUT",
    "HEALTH_RISE",
    "HEALTH_FALL",
    "RETRY_AFTER",
    "ACCESS_LOG",
    "DATA_BYTES",
    "ENABLE_FAULT_INJECTION",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _command_output(*command: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    return (
        (done.stdout or done.stderr).strip().splitlines()[0]
        if done.returncode == 0
        else "unavailable"
    )


def _compose_version() -> str:
    # Users have compose v2 (`docker compose`); this machine has v1 (`docker-compose`).
    for command in (("docker", "compose", "version"), ("docker-compose", "version", "--short")):
        found = _command_output(*command)
        if found != "unavailable":
            return found
    return "unavailable"


def machine() -> dict[str, str]:
    return {
        "machine": f"{_cpu_model()}, {os.cpu_count()} cores, {_memory_gib()} RAM",
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": sys.version.split()[0],
        "locust": version("locust"),
        "compose": _compose_version(),
        "git commit": _command_output("git", "rev-parse", "--short", "HEAD"),
    }


def deployment(project: str) -> str:
    """Images and contract settings of every container in one compose project, on one line."""
    try:
        client = docker_client()
        engine = client.version().get("Version", "unknown")
        containers = client.containers.list(filters={"label": f"{PROJECT_LABEL}={project}"})
    except (DockerException, FaultError):
        return "Docker engine unreachable"
    parts = [f"compose project {project} on Docker {engine}"]
    for container in sorted(containers, key=lambda c: str(c.labels.get(SERVICE_LABEL, c.name))):
        env = dict(str(e).partition("=")[::2] for e in container.attrs["Config"].get("Env") or [])
        settings = " ".join(f"{k}={env[k]}" for k in SETTING_NAMES if k in env)
        service = container.labels.get(SERVICE_LABEL, container.name)
        image = f"{container.attrs['Config'].get('Image')} ({str(container.attrs['Image'])[7:19]})"
        parts.append(f"{service}: {image}" + (f" {settings}" if settings else ""))
    return "; ".join(parts) + " (settings not listed: the contract's defaults)"
