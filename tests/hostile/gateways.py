"""Every described gateway (gateways/*.toml, --gateway-file, GATEWAY_FILES) as the hostile
suite runs it: with the same settings, in front of the same upstream.

The project's own run as local processes exactly as the benchmark runs them (bench/targets.py):
ours as `python -m gateway_service` (`ours_command`), nginx from the project's config rendered
by bench/nginx_config.py, HAProxy and Caddy from their images' own generators. A user's gateway
runs by its description's `command` when it has one, else in its container (host network, on
its described port), so an image-only gateway is judged too. Each reads the settings by the
names its description gives.

The settings keep one case's failures from leaking into the next: no active health checks
(`HEALTH_INTERVAL=0`) and a `MAX_FAILS` no case reaches, so a hostile answer never takes the
upstream out of rotation for the cases after it.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from testcontainers.core.container import DockerContainer

from bench.processes import Child, Children, free_port, http_get, wait_until
from bench.settings import BenchSettings, shared_settings
from bench.targets import StoragePool, gateway_env, start_caddy, start_haproxy, start_nginx
from tests.harness import docker_env
from toolkit.gateways import Gateway as Description

ROOT = Path(__file__).resolve().parents[2]
# The gateway_service package that runs as "ours": this checkout's, or another build of it (to
# check that the suite catches a bug, point this at a tree that has it).
OURS_SOURCE = Path(os.environ.get("HOSTILE_OURS_SOURCE") or ROOT).resolve()
NGINX_DIR = ROOT / "nginx"
NJS_MODULE = Path("/usr/lib/nginx/modules/ngx_http_js_module.so")
START_TIMEOUT_S = 30.0

OURS = "gateway"
"""Our gateway's description name: the one every case asks the strictest behaviour of."""
# The image each project gateway is deployed as: its STOPSIGNAL is how it is stopped gracefully.
DOCKERFILES = {
    OURS: ROOT / "gateway_service" / "Dockerfile",
    "nginx": NGINX_DIR / "Dockerfile",
    "haproxy": ROOT / "haproxy" / "Dockerfile",
    "caddy": ROOT / "caddy" / "Dockerfile",
}
# The gateways whose access lines the suite reads (Gateway.logged_statuses): ours' JSON events,
# nginx's JSON `sa_access` lines. HAProxy's and Caddy's formats carry no request id to find.
READABLE_ACCESS_LOGS = frozenset({OURS, "nginx"})
# The program each project gateway needs on this host (Debian packages).
PROGRAMS = {"nginx": "nginx", "haproxy": "haproxy", "caddy": "caddy"}

BEHAVIOURS = frozenset(
    {
        "interim",
        "unsolicited_101",
        "http09",
        "status_out_of_range",
        "ctl_relayed",
        "last_content_length",
        "te_over_cl",
        "retry_after_head",
        "bare_lf_chunk",
        "connection_nominated",
        "proxy_authorization",
    }
)
"""The names of `[hostile_deviations]` that make a case check what the gateway does instead
(`Gateway.declared`); any other name must be a case's (`case_key`), run as a strict xfail."""


def case_key(title: str) -> str:
    """A case's name in `[hostile_deviations]`: its title in lower case, words joined by '-'."""
    return "-".join(re.findall(r"[a-z0-9]+", title.lower()))


SETTINGS = BenchSettings(
    server_cpus=None,
    gateway={
        **shared_settings(),
        "CONNECT_TIMEOUT": 1.0,
        "READ_TIMEOUT": 3.0,
        "MAX_FAILS": 1_000_000,
        "FAIL_TIMEOUT": 1,
        "HEALTH_INTERVAL": 0.0,
        "HEALTH_TIMEOUT": 1.0,
    },
)
RESPONSE_BUFFER_BYTES = 64 * 1024
"""Ours: how much of a response the gateway holds before it commits to it (its default)."""


def ours_command(port: int) -> list[str]:
    """How our gateway is started: the one place to change it."""
    if (OURS_SOURCE / "gateway_service" / "__main__.py").exists():
        return [sys.executable, "-m", "gateway_service", "--host", "127.0.0.1", "--port", str(port)]
    return [
        sys.executable, "-m", "uvicorn", "gateway_service.app:app",
        "--loop", "uvloop", "--http", "httptools", "--no-access-log",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def nginx_missing() -> str | None:
    """Why nginx cannot run here, or None."""
    if shutil.which("nginx") is None:
        return "nginx is not installed (apt-get install nginx libnginx-mod-http-js)"
    if not NJS_MODULE.exists():
        return f"nginx's njs module is missing ({NJS_MODULE}; apt-get install libnginx-mod-http-js)"
    return None


def missing(name: str) -> str | None:
    """Why a project gateway cannot run here as a local process, or None."""
    if name == "nginx":
        return nginx_missing()
    program = PROGRAMS.get(name)
    if program is not None and shutil.which(program) is None:
        return f"{program} is not installed (scripts/host-packages.sh test installs it)"
    return None


def stop_signal(dockerfile: Path) -> signal.Signals:
    """The signal an image is stopped with: its STOPSIGNAL, else Docker's SIGTERM."""
    found = re.search(r"^STOPSIGNAL\s+(\S+)", dockerfile.read_text(), re.MULTILINE)
    return signal.Signals[found.group(1)] if found else signal.SIGTERM


@dataclass
class Gateway:
    description: Description
    port: int
    child: Child | None
    """Its process, when it runs as one; None when it runs in `container`."""
    container: DockerContainer | None = None
    serves_status: bool = False
    """It answered /status in the contract's shape when it started (the bench's HAProxy config
    has no Lua /status, Caddy none at all): the cases that read the checker's view need it."""

    @property
    def name(self) -> str:
        return self.description.name

    @property
    def access_log_read(self) -> bool:
        """Whether the suite can find a request's access line in its log."""
        return self.name in READABLE_ACCESS_LOGS

    def declared(self, key: str) -> str | None:
        """The declared difference `key` of this gateway (`[hostile_deviations]`), if any."""
        return self.description.hostile_deviations.get(key)

    @property
    def active_health(self) -> bool:
        """It probes the storage services itself (HEALTH_INTERVAL): a capability, not a
        difference; nginx open source has no active checks."""
        return self.description.capabilities.active_health

    @property
    def process(self) -> Child:
        """Its process, for the cases that watch its memory or signal it; a gateway that runs
        in a container has none here, and those cases are not run against it."""
        if self.child is None:
            pytest.skip(f"{self.name} runs in a container: this case watches a local process")
        return self.child

    @property
    def stop_signal(self) -> signal.Signals:
        """The signal that stops it gracefully, as its image is stopped (nginx: SIGQUIT)."""
        dockerfile = DOCKERFILES.get(self.name)
        return signal.SIGTERM if dockerfile is None else stop_signal(dockerfile)

    def log_text(self) -> str:
        if self.container is not None:
            out, err = self.container.get_logs()
            return (out + err).decode(errors="replace")
        if self.child is None or self.child.log_path is None or not self.child.log_path.exists():
            return ""
        return self.child.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def log_records(self) -> list[dict[str, Any]]:
        """Every JSON object of the log: ours writes its events so, nginx its access lines
        (the template's `sa_access` format)."""
        records = []
        for line in self.log_text().splitlines():
            if not line.startswith("{"):
                continue
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    records.append(record)
        return records

    def logged_statuses(self, request_id: str) -> list[int]:
        """The status of each access line for this request id (ours: `"event": "request"`)."""
        return [
            record["status"]
            for record in self.log_records()
            if record.get("request_id") == request_id
            and record.get("event", "request") == "request"
            and isinstance(record.get("status"), int)
        ]

    def events(self, event: str) -> list[dict[str, Any]]:
        """Ours' log events of one kind (`backend_down`, ...); nginx logs none."""
        return [record for record in self.log_records() if record.get("event") == event]


def _settings(overrides: Mapping[str, float]) -> BenchSettings:
    return replace(SETTINGS, gateway={**SETTINGS.gateway, **overrides})


def _env(
    description: Description, upstream_ports: list[int], settings: BenchSettings
) -> dict[str, str]:
    env = gateway_env(description, upstream_ports, settings)
    if description.name == OURS:
        env["RESPONSE_BUFFER_BYTES"] = str(RESPONSE_BUFFER_BYTES)
    return env


@contextlib.contextmanager
def running(
    description: Description,
    upstream_ports: list[int],
    log_dir: Path,
    overrides: Mapping[str, float] | None = None,
) -> Iterator[Gateway]:
    """The described gateway in front of `upstream_ports`, serving; stopped (by pid, or its
    container by id) on the way out.

    `overrides` changes common settings (by their names) for this gateway; each gateway gets
    those its description lists, so a setting only ours has (MAX_CONNECTIONS) reaches ours only.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    kids = Children(log_dir)
    settings = _settings(overrides or {})
    name = description.name
    container: DockerContainer | None = None
    try:
        child: Child | None
        if name == OURS:
            port = free_port()
            env = _env(description, upstream_ports, settings)
            child = kids.start(OURS, ours_command(port), env=env, cwd=OURS_SOURCE)
        elif name in PROGRAMS:
            child, port = _start_project(name, kids, upstream_ports, settings)
        elif description.command:
            port = free_port()
            command = description.local_command(port, sys.executable)
            env = _env(description, upstream_ports, settings)
            child = kids.start(name, command, env=env, cwd=ROOT)
        else:
            container = _container(description, _env(description, upstream_ports, settings))
            child, port = None, description.port
        wait_until(
            f"{name} /health", lambda: http_get(port, "/health")[0] == 200, START_TIMEOUT_S, child
        )
        yield Gateway(description, port, child, container, _serves_status(port))
    finally:
        kids.stop_all()
        if container is not None:
            container.stop()


def _serves_status(port: int) -> bool:
    with contextlib.suppress(OSError, ValueError):
        code, body = http_get(port, "/status")
        return code == 200 and "services" in json.loads(body)
    return False


def _container(description: Description, env: dict[str, str]) -> DockerContainer:
    """An image-only gateway on the host's network, so it reaches the upstream's loopback
    ports as a local process would; it listens on its described port, which must be free."""
    container = DockerContainer(description.image).with_envs(**env)
    container.with_kwargs(network_mode="host", labels=docker_env.run_labels())
    container.start()
    return container


def _start_project(
    name: str, kids: Children, upstream_ports: list[int], bench: BenchSettings
) -> tuple[Child, int]:
    # The bench's pool of storage services, pointed at the scripted upstream instead: the
    # start functions only read its ports.
    pool = StoragePool(kids, replace(bench, storage_count=0), ROOT)
    pool.ports = list(upstream_ports)
    if name == "nginx":
        target = start_nginx(kids, pool, bench, NGINX_DIR)
    elif name == "haproxy":
        target = start_haproxy(kids, pool, bench)
    else:
        target = start_caddy(kids, pool, bench)
    return target.root, target.port


@dataclass
class GatewayFactory:
    """Starts the gateway under test in front of other upstreams, for one test."""

    description: Description
    log_dir: Path
    stack: contextlib.ExitStack
    started: list[Gateway] = field(default_factory=list)

    def __call__(self, ports: list[int], overrides: Mapping[str, float] | None = None) -> Gateway:
        log_dir = self.log_dir / f"{self.description.name}-{len(self.started)}"
        gateway = self.stack.enter_context(running(self.description, ports, log_dir, overrides))
        self.started.append(gateway)
        return gateway
