"""Which gateways the comparison runs against by default, and how it deploys each.

The gateways and their deployments are described once, in gateways/*.toml and the files of
GATEWAY_FILES (toolkit/gateways.py); this module only chooses among them and names our gateway's
column `ours`, as every earlier results folder does. The descriptions are read when first
needed, so a bad file is reported by the command, not at import.
"""

from __future__ import annotations

import functools
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

# The environment the deployment gets: the failure scenarios need the fault endpoint switched on.
DEPLOY_ENV = {"ENABLE_FAULT_INJECTION": "true"}


@functools.cache
def _deployments() -> dict[str, gateways.Deploy]:
    """Described gateways with a deployment, by column name; raises GatewayFileError."""
    described = gateways.load(gateways.user_files())
    return {LABELS.get(g.name, g.name): g.deploy for g in described if g.deploy is not None}


def default_gateways() -> tuple[Gateway, ...]:
    """Compared in this order, one column each in the summary."""
    chosen = {LABELS.get(name, name) for name in COMPARED_BY_DEFAULT}
    return tuple(Gateway(n, d.url) for n, d in _deployments().items() if n in chosen)


def make_targets() -> dict[str, str]:
    """The make target that deploys each described gateway (compose, three storage services)."""
    return {name: d.make_target for name, d in _deployments().items()}


def described(name: str) -> Gateway | None:
    """A described gateway by its column name, at the URL its deployment publishes."""
    deploy = _deployments().get(name)
    return None if deploy is None else Gateway(name, deploy.url)


def make_target(name: str) -> str | None:
    """How a gateway of that name is deployed; None: the comparison cannot deploy it."""
    return make_targets().get(name)


def deploy_commands() -> str:
    """The make commands, as messages name them: `make deploy / make deploy-nginx / ...`."""
    return " / ".join(f"make {target}" for target in make_targets().values())
