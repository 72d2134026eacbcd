"""Which gateways the comparison runs against by default, and how it deploys each.

The gateways and their deployments are described once, in gateways/*.toml (toolkit/gateways.py);
this module only chooses among them and names our gateway's column `ours`, as every earlier
results folder does.
"""

from __future__ import annotations

from dataclasses import dataclass

from toolkit import gateways


@dataclass(frozen=True, slots=True)
class Gateway:
    name: str
    url: str


LABELS = {"gateway": "ours"}
"""Column names that differ from the description's name."""

COMPARED_BY_DEFAULT = ("gateway", "nginx")
"""Two columns by default: each gateway adds a deployment and every scenario's run time (name
others with --gateways, e.g. `ours,nginx,haproxy,caddy`)."""


def _deployable() -> dict[str, gateways.Gateway]:
    return {LABELS.get(g.name, g.name): g for g in gateways.load() if g.deploy is not None}


DEPLOYABLE = _deployable()

# Compared in this order, one column each in the summary.
DEFAULT_GATEWAYS = tuple(
    Gateway(label, g.deploy.url)
    for label, g in DEPLOYABLE.items()
    if g.name in COMPARED_BY_DEFAULT and g.deploy is not None
)
# The make target that deploys a gateway of that name (any URL given for it): the compose
# deployment of the gateway and its three storage services.
MAKE_TARGETS = {
    label: g.deploy.make_target for label, g in DEPLOYABLE.items() if g.deploy is not None
}
# The environment the deployment gets: the failure scenarios need the fault endpoint switched on.
DEPLOY_ENV = {"ENABLE_FAULT_INJECTION": "true"}


def described(name: str) -> Gateway | None:
    """A described gateway by its column name, at the URL its deployment publishes."""
    gateway = DEPLOYABLE.get(name)
    if gateway is None or gateway.deploy is None:
        return None
    return Gateway(name, gateway.deploy.url)


def make_target(name: str) -> str | None:
    """How a gateway of that name is deployed; None: the comparison cannot deploy it."""
    return MAKE_TARGETS.get(name)


def deploy_commands() -> str:
    """The make commands, as messages name them: `make deploy / make deploy-nginx / ...`."""
    return " / ".join(f"make {target}" for target in MAKE_TARGETS.values())
