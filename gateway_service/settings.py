"""Gateway settings, read from the environment and validated before anything starts."""

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gateway_service.otel import parse_endpoint

# Worker processes at most: beyond this, more processes fight over the rotation's lock and
# the per-worker counters that every /status read adds up.
MAX_WORKERS = 64


class SettingsError(Exception):
    """A setting is missing or wrong; the message is one line naming it and its value."""


@dataclass(frozen=True, slots=True)
class StorageURL:
    """One storage service, as parsed from `STORAGE_SERVICES`."""

    url: str  # normalised: http://host:port
    host: str
    port: int
    host_header: str  # what the Host header carries (as the user wrote it)


# A name the resolver can be asked for: the system resolver refuses anything else with an error
# of its own kind (UnicodeError for a label over 63 characters), and this one line is clearer.
# Underscores are allowed: Docker names services `stack_service`.
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?")


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_storage_url(entry: str) -> StorageURL:
    """Parse one `STORAGE_SERVICES` entry; raise ValueError saying what is wrong with it."""
    parts = urlsplit(entry)
    if parts.scheme != "http":
        raise ValueError(f"{entry!r} must start with http:// (only plain HTTP is proxied)")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{entry!r} must not carry credentials")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{entry!r} must be a base URL with no path, query or fragment")
    try:
        port = parts.port or 80
    except ValueError:
        raise ValueError(f"{entry!r} has an invalid port") from None
    host = parts.hostname
    if not host:
        raise ValueError(f"{entry!r} has no host")
    if not is_ip_literal(host) and not _HOSTNAME.fullmatch(host):
        raise ValueError(
            f"{entry!r}: {host!r} is neither an IP address nor a DNS name "
            "(dot-separated labels of 1..63 letters, digits, '-' or '_'; 253 characters at most)"
        )
    return StorageURL(url=f"http://{host}:{port}", host=host, port=port, host_header=parts.netloc)


def parse_storage_services(value: str) -> tuple[StorageURL, ...]:
    """Parse a comma-separated `STORAGE_SERVICES`; raise ValueError saying what is wrong."""
    entries = [entry.strip() for entry in value.split(",")]
    if entries == [""]:
        raise ValueError("must list at least one storage base URL")
    parsed: list[StorageURL] = []
    for position, entry in enumerate(entries, start=1):
        if not entry:
            raise ValueError(f"entry {position} is empty")
        storage = parse_storage_url(entry)
        if any(storage.url == seen.url for seen in parsed):
            raise ValueError(f"{entry!r} is listed twice")
        parsed.append(storage)
    return tuple(parsed)


def read_storage_services(path: str) -> tuple[StorageURL, ...]:
    """`STORAGE_SERVICES` from a file: URLs one per line or comma-separated, blank lines and
    `#` comments ignored. Raise ValueError in one line naming the file and what is wrong."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise ValueError(f"cannot read {path}: {reason}") from None
    lines = (line.partition("#")[0] for line in text.splitlines())
    entries = [entry.strip() for line in lines for entry in line.split(",")]
    try:
        return parse_storage_services(",".join(entry for entry in entries if entry))
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def _read_token(path: str) -> str:
    try:
        token = Path(path).read_text().strip()
    except (OSError, UnicodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise ValueError(f"ADMIN_TOKEN_FILE={path!r}: cannot read it: {reason}") from None
    if not token:
        raise ValueError(f"ADMIN_TOKEN_FILE={path!r}: the file holds no token")
    return token


class GatewaySettings(BaseSettings):
    """Every setting of the gateway; README.md documents them in one table."""

    model_config = SettingsConfigDict(env_ignore_empty=False, frozen=True)

    storage_services: Annotated[tuple[StorageURL, ...], NoDecode]
    connect_timeout: Annotated[float, Field(gt=0, le=300)] = 1.0
    read_timeout: Annotated[float, Field(gt=0, le=3600)] = 5.0
    max_fails: Annotated[int, Field(ge=1)] = 1
    fail_timeout: Annotated[float, Field(gt=0, le=86400)] = 10.0
    # 0 turns DNS discovery off (gateway_service/discovery.py).
    discovery_interval: Annotated[float, Field(ge=0, le=3600)] = 5.0
    health_interval: Annotated[float, Field(ge=0, le=3600)] = 2.0
    health_timeout: Annotated[float, Field(gt=0, le=300)] = 1.0
    health_rise: Annotated[int, Field(ge=1, le=100)] = 2
    health_fall: Annotated[int, Field(ge=1, le=100)] = 2
    retry_after: Annotated[int, Field(ge=0, le=86400)] = 1
    # Resilience (issue 19; README, "How it balances and fails over"). Each default keeps the
    # seed's behaviour.
    # Seconds over which a backend back in rotation ramps from a tenth to its full share; 0: off.
    slow_start: Annotated[float, Field(ge=0, le=3600)] = 0.0
    balancing: Literal["round_robin", "least_request"] = "round_robin"
    # At most this share of the backends out by passive checks at once; 100: no cap.
    max_ejection_percent: Annotated[int, Field(ge=0, le=100)] = 100
    # Requests retrying at once, as a share of requests in flight; 100: a retry is never refused
    # (a retrying request is itself in flight), so the budget is off. Envoy's default is 20.
    retry_budget_percent: Annotated[float, Field(ge=0, le=100)] = 100.0
    # Retrying requests always allowed at once, whatever the percentage (Envoy's default: 3).
    retry_budget_min: Annotated[int, Field(ge=0, le=10000)] = 3
    log_format: Literal["auto", "json", "text"] = "auto"
    access_log: bool = True
    # The proxy path: how much of a response is held, and how long a client may stall.
    response_buffer_bytes: Annotated[int, Field(ge=4096, le=64 * 1024 * 1024)] = 64 * 1024
    client_timeout: Annotated[float, Field(gt=0, le=3600)] = 10.0
    # How long a graceful shutdown waits for requests in flight (gateway_service/worker.py).
    shutdown_timeout: Annotated[float, Field(gt=0, le=3600)] = 10.0
    # None: derived from the open-file limit at start-up (gateway_service/supervisor.py).
    max_connections: Annotated[int, Field(ge=1)] | None = None
    # None: the CPUs this process may use (gateway_service/cpus.py).
    workers: Annotated[int, Field(ge=1, le=MAX_WORKERS)] | None = None
    # The admin API (docs/admin-api.md), served by the control process; 0: off.
    admin_port: Annotated[int, Field(ge=0, le=65535)] = 0
    admin_host: str = "127.0.0.1"
    # Never shown (the /status document lists the settings): from the setting or its file.
    admin_token: Annotated[SecretStr | None, Field(exclude=True)] = None
    admin_token_file: str | None = None
    # STORAGE_SERVICES read from this file instead, and again on SIGHUP.
    storage_services_file: str | None = None
    # OpenTelemetry export of the gateway's spans (gateway_service/otel.py); unset: off.
    otel_exporter_otlp_traces_endpoint: str | None = None
    otel_service_name: Annotated[str, Field(min_length=1, max_length=256)] = "gateway"

    @field_validator("otel_exporter_otlp_traces_endpoint")
    @classmethod
    def _endpoint_is_http(cls, value: str | None) -> str | None:
        if value:
            parse_endpoint(value)
        return value or None

    @model_validator(mode="before")
    @classmethod
    def _from_files(cls, data: Any) -> Any:
        """STORAGE_SERVICES from STORAGE_SERVICES_FILE, the token from ADMIN_TOKEN_FILE."""
        if not isinstance(data, dict):
            return data
        path = data.get("storage_services_file")
        if path:
            if data.get("storage_services") is not None:
                raise ValueError("set STORAGE_SERVICES or STORAGE_SERVICES_FILE, not both")
            try:
                data = {**data, "storage_services": read_storage_services(str(path))}
            except ValueError as error:
                raise ValueError(f"STORAGE_SERVICES_FILE={path!r}: {error}") from None
        token_file = data.get("admin_token_file")
        if token_file:
            if data.get("admin_token") is not None:
                raise ValueError("set ADMIN_TOKEN or ADMIN_TOKEN_FILE, not both")
            data = {**data, "admin_token": _read_token(str(token_file))}
        return data

    @model_validator(mode="after")
    def _admin_needs_a_token(self) -> "GatewaySettings":
        token = self.admin_token
        if self.admin_port and (token is None or not token.get_secret_value().strip()):
            raise ValueError(
                f"ADMIN_PORT={self.admin_port} needs ADMIN_TOKEN or ADMIN_TOKEN_FILE "
                "(the admin API answers only requests bearing it)"
            )
        return self

    @field_validator("admin_host")
    @classmethod
    def _admin_host_is_an_address(cls, value: str) -> str:
        if not is_ip_literal(value):
            raise ValueError("must be an IP address to listen on (127.0.0.1, 0.0.0.0, ::)")
        return value

    @field_validator("storage_services", mode="before")
    @classmethod
    def _split_storage_services(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        return parse_storage_services(value)


def load_settings(**overrides: object) -> GatewaySettings:
    """Read and validate the settings; raise SettingsError with one line per bad setting."""
    try:
        return GatewaySettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise SettingsError(_describe(error)) from None


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        name = str(item["loc"][0]).upper() if item["loc"] else "settings"
        message = str(item["msg"]).removeprefix("Value error, ")
        if not item["loc"]:
            problems.append(message)  # a rule over several settings names them itself
        elif item["type"] == "missing":
            problems.append(f"{name} is required but not set")
        else:
            problems.append(f"{name}={item.get('input')!r}: {message}")
    return "invalid settings: " + "; ".join(problems)
