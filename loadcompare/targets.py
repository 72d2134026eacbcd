"""Which gateways the comparison runs against by default, and how it deploys each.

The one place that knows them: the driver, its options and its messages read it from here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Gateway:
    name: str
    url: str


# Compared in this order, one column each in the summary.
DEFAULT_GATEWAYS = (
    Gateway("ours", "http://127.0.0.1:8000"),
    Gateway("nginx", "http://127.0.0.1:8080"),
)
# The make target that deploys a gateway of that name (any URL given for it): the compose
# deployment of the gateway and its three storage services.
MAKE_TARGETS = {"ours": "deploy", "nginx": "deploy-nginx"}
# The environment the deployment gets: the failure scenarios need the fault endpoint switched on.
DEPLOY_ENV = {"ENABLE_FAULT_INJECTION": "true"}


def make_target(name: str) -> str | None:
    """How a gateway of that name is deployed; None: the comparison cannot deploy it."""
    return MAKE_TARGETS.get(name)


def deploy_commands() -> str:
    """The make commands, as messages name them: `make deploy / make deploy-nginx`."""
    return " / ".join(f"make {target}" for target in MAKE_TARGETS.values())
