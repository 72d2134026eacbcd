"""Storage scaled 3 -> 5 -> 2, rolled and one task killed, under steady load, on Docker Swarm.

Each gateway runs in its own stack (docker-stack.yml, docker-stack.nginx.yml), deployed by
scripts/swarm.sh on GATEWAY_PORT / NGINX_PORT (default 8000 / 8080) and removed afterwards. Ours
must lose no request and serve every new replica within its stated bound; nginx's figures are
reported beside ours, and only its run completing is required.
"""

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway_service.settings import GatewaySettings, load_settings
from tests.swarm import control, report
from tests.swarm.control import Storage
from tests.swarm.scenario import INITIAL_REPLICAS, ScenarioResult, run_scenario
from toolkit.status import fetch_status

pytestmark = pytest.mark.swarm

# Slack for a request to reach the new replica once the gateway has it in rotation, and for the
# probes and DNS answers of two busy shared cores.
MARGIN = 3.0
# nginx has no bound; it gets this long to serve a new replica before the scenario moves on.
NGINX_SERVE_WAIT = 30.0


@dataclass(frozen=True)
class Target:
    gateway: str
    stack: str
    stack_file: str
    port_variable: str
    default_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{os.environ.get(self.port_variable, self.default_port)}"


TARGETS = (
    Target("gateway", "service-assembly-swarm", "docker-stack.yml", "GATEWAY_PORT", 8000),
    Target("nginx", "service-assembly-swarm-nginx", "docker-stack.nginx.yml", "NGINX_PORT", 8080),
)


def settings_in_effect(url: str) -> GatewaySettings:
    """What the deployed gateway runs with, as its /status reports it."""
    reported = fetch_status(url, timeout=10).settings
    assert reported is not None, f"{url}/status does not report its settings"
    values = {name.lower(): value for name, value in reported.items()}
    values["storage_services"] = ",".join(values["storage_services"])
    return load_settings(**values)


def serve_bound(settings: GatewaySettings) -> float:
    """Ours: a new address is found within one DISCOVERY_INTERVAL and joins the rotation after
    its first good probe, at most one HEALTH_INTERVAL (+ its timeout) later."""
    return settings.discovery_interval + settings.health_interval + settings.health_timeout + MARGIN


@pytest.mark.parametrize("target", TARGETS, ids=[t.gateway for t in TARGETS])
def test_storage_scales_rolls_and_loses_a_task_under_load(
    target: Target,
    swarm_results: list[ScenarioResult],
    swarm_out: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under steady load, storage scales 3 -> 5 -> 2, is rolled and loses a task: our gateway
    fails no request and serves each new replica within DISCOVERY_INTERVAL + HEALTH_INTERVAL +
    HEALTH_TIMEOUT + 3 s of it running; nginx's figures are recorded beside ours."""
    ours = target.gateway == "gateway"
    monkeypatch.setenv("STORAGE_REPLICAS", str(INITIAL_REPLICAS))
    control.deploy(target.stack, target.stack_file, target.url)
    try:
        bound = serve_bound(settings_in_effect(target.url)) if ours else NGINX_SERVE_WAIT
        storage = Storage(target.stack)
        result = asyncio.run(run_scenario(target.gateway, target.url, storage, bound))
        if not ours:
            result.reloads = control.nginx_reloads(target.stack)
    finally:
        front = "gateway" if ours else "nginx"
        (swarm_out / f"{target.gateway}.log").write_text(control.service_logs(target.stack, front))
        control.remove(target.stack)
    swarm_results.append(result)

    if not ours:
        return
    assert not result.failed, f"{len(result.failed)} requests failed:\n{report.failures(result)}"
    late = {
        f"{step.name}: {replica}": seconds
        for step in result.steps
        for replica, seconds in step.new_replicas.items()
        if seconds is None or seconds > bound
    }
    assert not late, f"new replicas not serving within {bound:.1f} s of running: {late}"
