"""The compose and swarm files give each gateway the time its graceful stop takes, and the swarm
stacks size WORKERS to the CPUs they allow it (docs/deploy.md). Kubernetes: test_k8s_manifests.py.
"""

import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway_service.settings import GatewaySettings
from gateway_service.supervisor import KILL_GRACE_SECONDS
from toolkit.gateways import ORDER

REPO = Path(__file__).resolve().parents[2]
FILES = sorted([*REPO.glob("docker-compose*.yml"), *REPO.glob("docker-stack*.yml")])
SHUTDOWN_TIMEOUT = GatewaySettings.model_fields["shutdown_timeout"].default


def gateway_services(path: Path) -> dict[str, dict[str, Any]]:
    """The services of a compose or stack file that are a gateway (ours or a stand-in)."""
    services: dict[str, dict[str, Any]] = yaml.safe_load(path.read_text())["services"]
    return {name: service for name, service in services.items() if name in ORDER}


def seconds(duration: str) -> float:
    found = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)s", duration)
    assert found is not None, f"expected a duration in seconds, got {duration!r}"
    return float(found.group(1))


def variable_default(value: str) -> str:
    """The default of a `${NAME:-default}` value (the value itself when it has none)."""
    found = re.fullmatch(r"\$\{[A-Z_]+:-([^}]*)\}", value)
    return found.group(1) if found else value


def test_every_deployment_file_has_one_gateway() -> None:
    assert len(FILES) == 6
    for path in FILES:
        assert len(gateway_services(path)) == 1, path.name


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_a_stop_outlasts_the_shutdown_timeout_and_the_kill_grace(path: Path) -> None:
    for name, service in gateway_services(path).items():
        grace = seconds(service["stop_grace_period"])
        assert grace > SHUTDOWN_TIMEOUT + KILL_GRACE_SECONDS, f"{path.name}: {name}"


@pytest.mark.parametrize(
    "path",
    [path for path in FILES if path.name.startswith("docker-stack")],
    ids=lambda path: path.name,
)
def test_a_swarm_gateway_runs_one_worker_per_cpu_of_its_limit(path: Path) -> None:
    for name, service in gateway_services(path).items():
        cpus = float(service["deploy"]["resources"]["limits"]["cpus"])
        workers = int(variable_default(service["environment"]["WORKERS"]))
        assert workers == math.ceil(cpus), f"{path.name}: {name}"


@pytest.mark.parametrize(
    "path",
    [path for path in FILES if path.name.startswith("docker-compose")],
    ids=lambda path: path.name,
)
def test_a_compose_gateway_is_unlimited_and_takes_the_default(path: Path) -> None:
    """No CPU limit, so WORKERS' default (a worker per CPU it may use) is every host CPU."""
    for name, service in gateway_services(path).items():
        assert not {"cpus", "cpu_quota", "cpuset"} & set(service), f"{path.name}: {name}"
        assert "WORKERS" not in service.get("environment", {}), f"{path.name}: {name}"
