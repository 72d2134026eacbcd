"""What a reader needs to rerun a comparison: machine, versions, and the gateways' settings."""

from __future__ import annotations

from docker.errors import DockerException

from gateway_service.settings import GatewaySettings
from loadcompare.faults import PROJECT_LABEL, SERVICE_LABEL, docker_client
from storage_service.settings import StorageSettings
from toolkit.faults import FaultError
from toolkit.machine import command_output, compose_version, describe_machine, package_version

# The services' settings, as environment variable names; anything else in a container's
# environment is left out, and so is INSTANCE_NAME (the service's name says it).
SETTING_NAMES = tuple(
    name.upper()
    for name in (*GatewaySettings.model_fields, *StorageSettings.model_fields)
    if name != "instance_name"
)


def machine() -> dict[str, str]:
    """The machine and versions, as the summary states them."""
    described = describe_machine()
    return {
        "machine": described.summary,
        "os": described.os,
        "python": described.python,
        "locust": package_version("locust"),
        "compose": compose_version(),
        "git commit": command_output("git", "rev-parse", "--short", "HEAD"),
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
