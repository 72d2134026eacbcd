"""Gateway descriptions: one TOML file per gateway, read by the contract suite, the load tests
and the benchmark alike.

The project's own gateways are described in `gateways/*.toml`; a user adds theirs with a file of
the same shape (`--gateway-file PATH` or GATEWAY_FILES, see docs/contract-suite.md) without
editing the project. A description says what the tools need to know and nothing about how the
gateway works inside: its image and port, which of the common settings it takes and under which
names, what it can do (active health checks, per-service request counts, `/status`), the
departures from the contract it declares, and where `make` deploys it.

The common settings are the gateway's own (`gateway_service.settings.GatewaySettings`: names,
units and production defaults live there once); a description lists the ones its gateway honours.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway_service.settings import GatewaySettings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUILT_IN_DIR = PROJECT_ROOT / "gateways"
FILES_VARIABLE = "GATEWAY_FILES"
"""Environment variable: extra description files, separated by os.pathsep (':')."""

UNITS = {"s": 1.0, "ms": 1000.0}
"""Units a setting may be passed in; the common settings are in seconds."""


def common_settings() -> dict[str, Any]:
    """The common settings' environment names and production defaults (the gateway's own)."""
    return {
        name.upper(): None if info.is_required() else info.default
        for name, info in GatewaySettings.model_fields.items()
    }


class GatewayFileError(ValueError):
    """A description file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Capabilities:
    active_health: bool
    """Probes each storage service's /health on its own (HEALTH_INTERVAL and friends)."""
    counts_requests: bool
    """`/status` reports `requests_served` per service."""
    status: bool
    """Serves `/status` in the contract's shape; without it the tools judge by traffic alone."""
    runtime_api: str = ""
    """How its backends are drained at runtime, on the port ADMIN_PORT names: one of
    RUNTIME_APIS, or "" for none (a restart is the only way)."""


RUNTIME_APIS = {
    "gateway": "our gateway's admin API: /admin/backends with a Bearer token (README)",
    "haproxy": "HAProxy's runtime API on a TCP stats socket (`set server B/S state drain`)",
    "caddy": "Caddy's admin API (the reverse_proxy's upstreams changed in its JSON config)",
}
"""The runtime APIs the tools can speak, by the name a description's `runtime_api` uses."""


@dataclass(frozen=True)
class SettingName:
    """How one common setting reaches the gateway: an environment variable, in a unit."""

    env: str
    unit: str = "s"

    def render(self, value: object) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if self.unit != "s" and isinstance(value, int | float) and not isinstance(value, bool):
            scaled = float(value) * UNITS[self.unit]
            return str(int(scaled)) if scaled.is_integer() else str(scaled)
        return str(value)


@dataclass(frozen=True)
class Deploy:
    """Where `make` deploys the gateway with Docker Compose."""

    compose_file: str
    make_target: str
    url: str


@dataclass(frozen=True)
class Gateway:
    name: str
    summary: str
    image: str
    port: int
    """The port it listens on inside its container."""
    settings: Mapping[str, SettingName]
    """The common settings it honours (by common name) and how each is passed."""
    capabilities: Capabilities
    fixed: Mapping[str, float]
    """Common settings it cannot change, with the value it behaves as (e.g. HEALTH_RISE = 1)."""
    environment: Mapping[str, str] = field(default_factory=dict)
    """Extra environment, passed as is."""
    deviations: Mapping[str, str] = field(default_factory=dict)
    """Declared departures from the contract: check name -> why. The contract suite runs a
    check that meets one as a strict xfail with that reason, so it stays visible and re-checked."""
    hostile_deviations: Mapping[str, str] = field(default_factory=dict)
    """The same for the hostile suite (tests/hostile, docs/hostile-upstreams.md): case or
    behaviour name -> why. A case named here runs as a strict xfail with that reason; a
    behaviour name makes the case check what the gateway does instead."""
    default: bool = True
    """Whether a run that names no gateways includes it."""
    deploy: Deploy | None = None
    command: tuple[str, ...] = ()
    """How to run it as a local process (the bench does): `{port}` is the port to listen on,
    `{python}` the interpreter running the tool; empty when it only runs as an image."""
    source: Path | None = None

    def local_command(self, port: int, python: str) -> list[str]:
        """`command` with its placeholders filled in."""
        return [
            arg.replace(PORT_PLACEHOLDER, str(port)).replace(PYTHON_PLACEHOLDER, python)
            for arg in self.command
        ]

    def honours(self, name: str) -> bool:
        return name in self.settings

    def value(self, name: str, chosen: Mapping[str, object]) -> object:
        """The value the gateway behaves as for a common setting: fixed, chosen, or default."""
        if name in self.fixed:
            return self.fixed[name]
        return chosen.get(name, common_settings()[name])

    def env(self, values: Mapping[str, object]) -> dict[str, str]:
        """The container environment for common-setting values (those it honours) plus its own."""
        rendered = {
            self.settings[name].env: self.settings[name].render(value)
            for name, value in values.items()
            if name in self.settings
        }
        return {**rendered, **self.environment}


# -- reading files -----------------------------------------------------------------------------

_TOP_KEYS = {
    "name",
    "summary",
    "image",
    "port",
    "settings",
    "rename",
    "fixed",
    "capabilities",
    "environment",
    "deviations",
    "hostile_deviations",
    "default",
    "deploy",
    "command",
}
PORT_PLACEHOLDER = "{port}"
PYTHON_PLACEHOLDER = "{python}"


def _require(table: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in table:
        raise GatewayFileError(f"{where}: `{key}` is missing")
    value = table[key]
    # bool is an int in Python; a port of `true` is still wrong.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise GatewayFileError(f"{where}: `{key}` must be {_kind_name(kind)}, not {value!r}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    names |= {dict: "a table", list: "a list"}
    return " or ".join(names.get(k, k.__name__) for k in _as_tuple(kind))


def _optional(table: Mapping[str, Any], key: str, kind: type, where: str, default: Any) -> Any:
    return _require(table, key, kind, where) if key in table else default


def _strings(table: Mapping[str, Any], where: str) -> dict[str, str]:
    for key, value in table.items():
        if not isinstance(value, str):
            raise GatewayFileError(f"{where}.{key} must be a string, not {value!r}")
    return dict(table)


def _reasons(raw: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    """A table of declared deviations: name -> a reason that says why (never empty)."""
    reasons = _strings(_optional(raw, key, dict, where, {}), f"{where}: {key}")
    for name, why in reasons.items():
        if not why.strip():
            raise GatewayFileError(f"{where}: {key}.{name} needs a reason, not an empty string")
    return reasons


def _settings(raw: Mapping[str, Any], where: str) -> dict[str, SettingName]:
    known = common_settings()
    names = _optional(raw, "settings", list, where, [])
    rename = _optional(raw, "rename", dict, where, {})
    settings: dict[str, SettingName] = {}
    for name in names:
        if name not in known:
            raise GatewayFileError(
                f"{where}: `settings` names {name!r}, which is not a common setting "
                f"(known: {', '.join(sorted(known))})"
            )
        settings[name] = SettingName(env=name)
    for name, how in rename.items():
        spot = f"{where}: rename.{name}"
        if name not in settings:
            raise GatewayFileError(f"{spot}: {name} is not listed in `settings`")
        if not isinstance(how, dict):
            raise GatewayFileError(f'{spot} must be a table, e.g. {{ env = "X", unit = "ms" }}')
        env = _require(how, "env", str, spot)
        unit = _optional(how, "unit", str, spot, "s")
        if unit not in UNITS:
            raise GatewayFileError(f"{spot}: unit {unit!r} is not one of {', '.join(UNITS)}")
        settings[name] = SettingName(env=env, unit=unit)
    if "STORAGE_SERVICES" not in settings:
        raise GatewayFileError(f"{where}: `settings` must include STORAGE_SERVICES")
    return settings


def _fixed(raw: Mapping[str, Any], where: str) -> dict[str, float]:
    known = common_settings()
    fixed: dict[str, float] = {}
    for name, value in _optional(raw, "fixed", dict, where, {}).items():
        if name not in known:
            raise GatewayFileError(f"{where}: fixed.{name} is not a common setting")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise GatewayFileError(f"{where}: fixed.{name} must be a number, not {value!r}")
        fixed[name] = value
    return fixed


def _image(name: str, configured: str) -> str:
    """The image, unless CONTRACT_<NAME>_IMAGE names another (e.g. a registry build in CI)."""
    variable = "CONTRACT_" + "".join(c if c.isalnum() else "_" for c in name.upper()) + "_IMAGE"
    return os.environ.get(variable, configured)


def parse(raw: Mapping[str, Any], source: Path | None = None) -> Gateway:
    """A description from a parsed TOML document; GatewayFileError says what is wrong."""
    where = str(source) if source is not None else "gateway description"
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise GatewayFileError(
            f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_TOP_KEYS))})"
        )
    name = _require(raw, "name", str, where)
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise GatewayFileError(f"{where}: name {name!r} must be letters, digits, '-' or '_'")
    for key in ("image", "summary"):
        if not str(_require(raw, key, str, where)).strip():
            raise GatewayFileError(f"{where}: `{key}` is empty")
    port = _require(raw, "port", int, where)
    if not 1 <= port <= 65535:
        raise GatewayFileError(f"{where}: port {port} is not a TCP port")
    settings = _settings(raw, where)
    caps = _require(raw, "capabilities", dict, where)
    spot = f"{where}: capabilities"
    capabilities = Capabilities(
        active_health=_require(caps, "active_health", bool, spot),
        counts_requests=_require(caps, "counts_requests", bool, spot),
        status=_require(caps, "status", bool, spot),
        runtime_api=_optional(caps, "runtime_api", str, spot, ""),
    )
    if capabilities.runtime_api and capabilities.runtime_api not in RUNTIME_APIS:
        raise GatewayFileError(
            f"{spot}: runtime_api {capabilities.runtime_api!r} is not one of "
            f"{', '.join(RUNTIME_APIS)} (or leave it out: no runtime API)"
        )
    if capabilities.runtime_api and "ADMIN_PORT" not in settings:
        raise GatewayFileError(f"{spot}: runtime_api needs ADMIN_PORT in `settings` (its port)")
    if capabilities.counts_requests and not capabilities.status:
        raise GatewayFileError(f"{spot}: counts_requests needs status (counts are in /status)")
    deploy_raw = _optional(raw, "deploy", dict, where, None)
    deploy = None
    if deploy_raw is not None:
        spot = f"{where}: deploy"
        deploy = Deploy(
            compose_file=_require(deploy_raw, "compose_file", str, spot),
            make_target=_require(deploy_raw, "make_target", str, spot),
            url=_require(deploy_raw, "url", str, spot),
        )
    return Gateway(
        name=name,
        summary=_require(raw, "summary", str, where),
        image=_image(name, _require(raw, "image", str, where)),
        port=port,
        settings=settings,
        capabilities=capabilities,
        fixed=_fixed(raw, where),
        environment=_strings(_optional(raw, "environment", dict, where, {}), "environment"),
        deviations=_strings(_optional(raw, "deviations", dict, where, {}), "deviations"),
        hostile_deviations=_reasons(raw, "hostile_deviations", where),
        default=_optional(raw, "default", bool, where, True),
        deploy=deploy,
        command=_command(raw, where),
        source=source,
    )


def _command(raw: Mapping[str, Any], where: str) -> tuple[str, ...]:
    command = _optional(raw, "command", list, where, [])
    if not command:
        return ()
    if not all(isinstance(arg, str) and arg for arg in command):
        raise GatewayFileError(f"{where}: `command` must be a list of non-empty strings")
    if not any(PORT_PLACEHOLDER in arg for arg in command):
        raise GatewayFileError(
            f"{where}: `command` must say where the port goes ({PORT_PLACEHOLDER}): "
            "the tool picks a free one"
        )
    return tuple(command)


def read(path: Path) -> Gateway:
    try:
        with path.open("rb") as file:
            raw = tomllib.load(file)
    except OSError as error:
        raise GatewayFileError(f"{path}: cannot read it ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise GatewayFileError(f"{path}: not valid TOML ({error})") from None
    return parse(raw, path)


def user_files(option: Iterable[str] = ()) -> list[Path]:
    """Description files named by an option and by GATEWAY_FILES, in that order."""
    from_env = [p for p in os.environ.get(FILES_VARIABLE, "").split(os.pathsep) if p.strip()]
    # The same file named both ways is one file, not a clash of names.
    unique = {Path(p).resolve(): Path(p) for p in reversed([*option, *from_env])}
    return list(reversed(unique.values()))


def load(extra: Iterable[Path] = ()) -> tuple[Gateway, ...]:
    """The project's gateways (gateways/*.toml, in ORDER) followed by the extra files."""
    built_in = sorted(BUILT_IN_DIR.glob("*.toml"), key=_built_in_rank)
    gateways: dict[str, Gateway] = {}
    for path in [*built_in, *extra]:
        gateway = read(path)
        if gateway.name in gateways:
            raise GatewayFileError(
                f"{path}: gateway {gateway.name!r} is already described by "
                f"{gateways[gateway.name].source}; give yours another name"
            )
        gateways[gateway.name] = gateway
    return tuple(gateways.values())


ORDER = ("gateway", "nginx", "haproxy", "caddy")
"""The project's gateways in the order reports show them (ours first)."""


def _built_in_rank(path: Path) -> tuple[int, str]:
    return (ORDER.index(path.stem) if path.stem in ORDER else len(ORDER), path.stem)


def select(gateways: Iterable[Gateway], names: str | None) -> tuple[Gateway, ...]:
    """The gateways named in a comma-separated list (the default ones when None or empty)."""
    known = {g.name: g for g in gateways}
    if not names or not names.strip():
        return tuple(g for g in known.values() if g.default)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise GatewayFileError(
            f"unknown gateway(s) {', '.join(unknown)}; known: {', '.join(known)}"
        )
    return tuple(known[n] for n in wanted)
