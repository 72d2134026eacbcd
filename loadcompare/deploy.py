"""Making sure a gateway answers before its runs: deploy it if needed, wait until it is healthy."""

from __future__ import annotations

import os
import subprocess
from enum import StrEnum

from loadcompare.paths import REPO
from loadcompare.targets import DEPLOY_ENV, Gateway, make_target
from toolkit.serving import serves_from_all
from toolkit.status import read_status
from toolkit.waiting import ConditionTimeout, answers_200, wait_until

DEPLOY_TIMEOUT_S = 600.0


class Deploy(StrEnum):
    IF_MISSING = "if-missing"  # deploy only a gateway that does not answer /health
    ALWAYS = "always"  # (re)deploy, so fault injection is surely on
    NEVER = "never"  # a gateway that does not answer is a problem, not a job


COMPOSE_STORAGE_COUNT = 3
"""storage1..3 in every compose deployment: what a gateway without /status must serve from."""


def wait_all_available(url: str, timeout_s: float) -> bool:
    """Waits until the gateway reports every storage service available (bounded); one that
    has no /status (Caddy), until one rotation of requests is served by all of them."""

    def all_available() -> bool:
        status = read_status(url)
        if status is not None:
            return status.all_available
        return serves_from_all(url, COMPOSE_STORAGE_COUNT)

    try:
        wait_until(
            all_available, timeout=timeout_s, interval=0.5, what="every storage service available"
        )
    except ConditionTimeout:
        return False
    return True


def ensure_deployed(gateway: Gateway, deploy: Deploy) -> str | None:
    """None when the gateway is up (deploying it if needed); otherwise why it cannot run."""
    if deploy is not Deploy.ALWAYS and answers_200(f"{gateway.url}/health"):
        return None
    target = make_target(gateway.name)
    if deploy is Deploy.NEVER or target is None:
        return f"{gateway.url} does not answer /health and was not deployed"
    print(f"{gateway.name}: make {target} (with fault injection enabled)", flush=True)
    try:
        done = subprocess.run(
            ["make", target],
            cwd=REPO,
            env={**os.environ, **DEPLOY_ENV},
            timeout=DEPLOY_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"make {target} failed: {error}"
    if done.returncode != 0:
        return f"make {target} exited with {done.returncode}"
    return None
