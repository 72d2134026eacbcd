"""The gateways under test: each one's description (toolkit/gateways.py, gateways/*.toml, or a
user's file) with the contract suite's timings applied.

Tests branch on capabilities (`active_health`, `counts_requests`, `has_status`), never on names,
so another gateway is one more description file (see docs/contract-suite.md).

Timings are shorter than the production defaults so that failures are detected, and waited
out, in seconds; every bound a test asserts is derived from these numbers.
"""

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from toolkit import gateways
from toolkit.gateways import Gateway

# A test stack's token, its port published on loopback only: not a secret.
ADMIN_TOKEN = "contract-suite-admin-token"  # nosec B105
SUITE_SETTINGS: Mapping[str, float | str] = {
    "CONNECT_TIMEOUT": 0.5,
    "READ_TIMEOUT": 2.0,
    "MAX_FAILS": 1,
    "FAIL_TIMEOUT": 3.0,
    "HEALTH_INTERVAL": 0.5,
    "HEALTH_TIMEOUT": 0.5,
    "HEALTH_RISE": 2,
    "HEALTH_FALL": 2,
    "RETRY_AFTER": 1,
    # The runtime API (issue 19), where a gateway has one: published on 127.0.0.1 only, like
    # every port of the stack.
    "ADMIN_HOST": "0.0.0.0",  # nosec B104: inside the container, published on loopback only
    "ADMIN_PORT": 9901,
    "ADMIN_TOKEN": ADMIN_TOKEN,
}
"""The common settings every gateway under test gets (those it honours)."""


NO_STATUS = "it serves no /status (capabilities.status = false); the suite judges it by traffic"
WORKERS_SUFFIX = "@workers"
"""A deviation named `<check>@workers` applies only when the gateway runs several workers."""
SEVERAL_WORKERS = int(os.environ.get("CONTRACT_WORKERS", "2"))
"""How many workers (processes, threads, GOMAXPROCS) the several-workers scenarios run with."""


@dataclass(frozen=True)
class Timing:
    connect_timeout: float
    """Seconds the gateway waits to open a connection to a storage service."""
    read_timeout: float
    """Seconds the gateway waits for a storage service's response."""
    fail_timeout: float
    """Seconds a passively failed service stays out of rotation."""
    health_interval: float | None
    """Seconds between active /health probes; None: the gateway has no active checks."""
    health_rise: int = 2
    health_fall: int = 2


@dataclass(frozen=True)
class GatewaySpec:
    """One gateway as the suite runs it."""

    description: Gateway
    timing: Timing
    workers: int = 1
    """Its WORKERS: 1 for the contract as a whole, more for the several-workers scenarios."""

    @property
    def name(self) -> str:
        """The pytest id: tests show up as test_x[<name>], or test_x[<name>-x2] with 2 workers."""
        if self.workers == 1:
            return self.description.name
        return f"{self.description.name}-x{self.workers}"

    def with_workers(self, workers: int) -> "GatewaySpec":
        return replace(self, workers=workers)

    @property
    def takes_workers(self) -> bool:
        """Whether it can be told how many workers to run (WORKERS in its settings)."""
        return self.description.honours("WORKERS")

    @property
    def image(self) -> str:
        return self.description.image

    @property
    def port(self) -> int:
        """The port the gateway listens on inside its container."""
        return self.description.port

    @property
    def deviations(self) -> Mapping[str, str]:
        """Declared ones (with several workers, `<check>@workers` ones too), plus `no-status`
        for a gateway without /status."""
        declared = {
            name: why
            for name, why in self.description.deviations.items()
            if not name.endswith(WORKERS_SUFFIX)
        }
        if self.workers > 1:
            declared |= {
                name.removesuffix(WORKERS_SUFFIX): why
                for name, why in self.description.deviations.items()
                if name.endswith(WORKERS_SUFFIX)
            }
        if not self.has_status:
            declared["no-status"] = NO_STATUS
        return declared

    @property
    def active_health(self) -> bool:
        return self.description.capabilities.active_health

    @property
    def counts_requests(self) -> bool:
        """Whether /status reports `requests_served`."""
        return self.description.capabilities.counts_requests

    @property
    def has_status(self) -> bool:
        """Whether the gateway serves /status; without it the suite judges by traffic alone."""
        return self.description.capabilities.status

    @property
    def runtime_api(self) -> str:
        """How its backends are drained at runtime (toolkit.gateways.RUNTIME_APIS), or ""."""
        return self.description.capabilities.runtime_api

    @property
    def admin_port(self) -> int | None:
        """The container port of its runtime API, when it has one."""
        if not self.runtime_api:
            return None
        return int(SUITE_SETTINGS["ADMIN_PORT"])

    def environment(
        self, storage_urls: list[str], overrides: Mapping[str, object] | None = None
    ) -> dict[str, str]:
        """Container environment, given the storage base URLs in order, with a scenario's own
        values for some common settings (`overrides`; those it does not honour are dropped)."""
        values = {
            **SUITE_SETTINGS,
            "WORKERS": self.workers,
            "STORAGE_SERVICES": ",".join(storage_urls),
            **(overrides or {}),
        }
        return self.description.env(values)


def _timing(gateway: Gateway) -> Timing:
    def value(name: str) -> float:
        chosen = gateway.value(name, SUITE_SETTINGS)
        assert isinstance(chosen, int | float), f"{name} is not a number of seconds: {chosen!r}"
        return chosen

    return Timing(
        connect_timeout=value("CONNECT_TIMEOUT"),
        read_timeout=value("READ_TIMEOUT"),
        fail_timeout=value("FAIL_TIMEOUT"),
        health_interval=value("HEALTH_INTERVAL") if gateway.capabilities.active_health else None,
        health_rise=int(value("HEALTH_RISE")),
        health_fall=int(value("HEALTH_FALL")),
    )


def spec(gateway: Gateway) -> GatewaySpec:
    return GatewaySpec(description=gateway, timing=_timing(gateway))


def available(files: Iterable[str] = ()) -> tuple[GatewaySpec, ...]:
    """The project's gateways and those of the user's files (--gateway-file, GATEWAY_FILES)."""
    return tuple(spec(g) for g in gateways.load(gateways.user_files(files)))


def selected(names: str | None, files: Iterable[str] = ()) -> tuple[GatewaySpec, ...]:
    """The gateways named in a comma-separated list (the default ones when None or empty).

    Raises toolkit.gateways.GatewayFileError (a ValueError) for an unknown name or a bad file.
    """
    known = {s.name: s for s in available(files)}
    chosen = gateways.select((s.description for s in known.values()), names)
    return tuple(known[g.name] for g in chosen)


STORAGE_IMAGE = os.environ.get("CONTRACT_STORAGE_IMAGE", "service-assembly/storage:dev")
STORAGE_NAMES = ("storage1", "storage2", "storage3")
EXAMPLE_FILE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "passive-gateway.toml"
"""The walk-through's example (docs/contract-suite.md), run by CI like a user's own file."""
