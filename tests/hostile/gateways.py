"""Both gateways as local processes, with the same settings, in front of the same upstream.

Ours runs as `python -m gateway_service` (`ours_command`), nginx exactly as the benchmark runs
it (bench/targets.py `start_nginx`: the project's config rendered by bench/nginx_config.py).
Both read the settings by the same names (nginx through nginx/env.sh).

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

from bench.processes import Child, Children, free_port, http_get, wait_until
from bench.settings import BenchSettings, described, shared_settings
from bench.targets import StoragePool, gateway_env, start_nginx

ROOT = Path(__file__).resolve().parents[2]
# The gateway_service package that runs as "ours": this checkout's, or another build of it (to
# check that the suite catches a bug, point this at a tree that has it).
OURS_SOURCE = Path(os.environ.get("HOSTILE_OURS_SOURCE") or ROOT).resolve()
NGINX_DIR = ROOT / "nginx"
NJS_MODULE = Path("/usr/lib/nginx/modules/ngx_http_js_module.so")
START_TIMEOUT_S = 30.0

GATEWAYS = ("ours", "nginx")
# Each gateway's description (gateways/<name>.toml): its capabilities, the settings it takes.
DESCRIPTIONS = {"ours": "gateway", "nginx": "nginx"}
# The image each is deployed as: its STOPSIGNAL is how it is stopped gracefully.
DOCKERFILES = {
    "ours": ROOT / "gateway_service" / "Dockerfile",
    "nginx": NGINX_DIR / "Dockerfile",
}

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

# What nginx does instead of what the case asks of ours, and why; the case checks what nginx
# does, and the table marks the row as a declared difference.
DECLARED: dict[str, dict[str, str]] = {
    "nginx": {
        "interim": "nginx 1.22 cannot proxy a 1xx: it takes the first one for the final "
        "response and what follows for its body, so the client gets that 1xx only when "
        "READ_TIMEOUT ends the exchange, and never the real answer; it never reuses that "
        "upstream connection, so nothing leaks",
        "unsolicited_101": "nginx relays a 101 Switching Protocols to a client that asked for "
        "no upgrade, and drops the real answer",
        "http09": "nginx takes a response without a valid status line for HTTP/0.9 and relays "
        "its bytes raw, without retrying: the client gets no status line at all",
        "status_out_of_range": "nginx relays a status outside 100..599 (600, 999) and its body; "
        "RFC 9110 section 15 says to treat such a status as a 5xx, which ours is asked to do",
        "ctl_relayed": "nginx relays header values holding control characters other than "
        "NUL, CR and LF (RFC 9110 section 5.5 lets a recipient keep them), with their response",
        "last_content_length": "nginx 1.22 accepts two different Content-Length values from an "
        "upstream and frames the body by the last one",
        "te_over_cl": "nginx accepts Content-Length together with Transfer-Encoding: chunked "
        "from an upstream, frames by the chunking and drops Content-Length (RFC 9112 section "
        "6.3 allows it); ours is asked to reject such a response",
        "retry_after_head": "nginx sends the response head to the client as soon as it has "
        "parsed it, so a body cut short cannot be retried: the client gets a truncated body, "
        "never presented as complete",
        "bare_lf_chunk": "nginx 1.22 takes a bare LF for the CRLF that ends a chunk line of a "
        "request body (as it does for header lines), re-frames the body with Content-Length "
        "and forwards the request: 200; RFC 9112 section 7.1 says CRLF, and parsers that "
        "disagree on such framing are how requests are smuggled, so ours is asked to refuse it",
        "connection_nominated": "nginx forwards the fields a client's Connection header "
        "names (it drops Connection itself, Keep-Alive, TE and Upgrade); RFC 9110 section "
        "7.6.1 says a proxy removes them",
        "proxy_authorization": "nginx forwards a client's Proxy-Authorization to the upstream; "
        "it is a credential for the proxy (RFC 9110 section 11.7.2), which ours consumes",
    },
    "ours": {},
}


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


def stop_signal(dockerfile: Path) -> signal.Signals:
    """The signal an image is stopped with: its STOPSIGNAL, else Docker's SIGTERM."""
    found = re.search(r"^STOPSIGNAL\s+(\S+)", dockerfile.read_text(), re.MULTILINE)
    return signal.Signals[found.group(1)] if found else signal.SIGTERM


@dataclass
class Gateway:
    name: str
    port: int
    child: Child

    def declared(self, key: str) -> str | None:
        """The declared difference `key` of this gateway, if it has one."""
        return DECLARED.get(self.name, {}).get(key)

    @property
    def active_health(self) -> bool:
        """It probes the storage services itself (HEALTH_INTERVAL): a capability, not a
        difference; nginx open source has no active checks."""
        return described(DESCRIPTIONS[self.name]).capabilities.active_health

    @property
    def stop_signal(self) -> signal.Signals:
        """The signal that stops it gracefully, as its image is stopped (nginx: SIGQUIT)."""
        return stop_signal(DOCKERFILES[self.name])

    def log_text(self) -> str:
        if self.child.log_path is None or not self.child.log_path.exists():
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


def _env(upstream_ports: list[int], settings: BenchSettings) -> dict[str, str]:
    return {
        **gateway_env("gateway", upstream_ports, settings),
        "RESPONSE_BUFFER_BYTES": str(RESPONSE_BUFFER_BYTES),
    }


@contextlib.contextmanager
def running(
    name: str,
    upstream_ports: list[int],
    log_dir: Path,
    overrides: Mapping[str, float] | None = None,
) -> Iterator[Gateway]:
    """Gateway `name` in front of `upstream_ports`, serving; stopped (by pid) on the way out.

    `overrides` changes common settings (by their names) for this gateway; each gateway gets
    those its description lists, so a setting only ours has (MAX_CONNECTIONS) reaches ours only.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    kids = Children(log_dir)
    settings = _settings(overrides or {})
    try:
        if name == "ours":
            port = free_port()
            child = kids.start(
                "ours", ours_command(port), env=_env(upstream_ports, settings), cwd=OURS_SOURCE
            )
        elif name == "nginx":
            child, port = _start_nginx(kids, upstream_ports, settings)
        else:
            raise ValueError(f"unknown gateway {name!r}")
        wait_until(
            f"{name} /health", lambda: http_get(port, "/health")[0] == 200, START_TIMEOUT_S, child
        )
        yield Gateway(name, port, child)
    finally:
        kids.stop_all()


def _start_nginx(
    kids: Children, upstream_ports: list[int], bench: BenchSettings
) -> tuple[Child, int]:
    # The bench's pool of storage services, pointed at the scripted upstream instead: start_nginx
    # only reads its ports.
    pool = StoragePool(kids, replace(bench, storage_count=0), ROOT)
    pool.ports = list(upstream_ports)
    target = start_nginx(kids, pool, bench, NGINX_DIR)
    return target.root, target.port


@dataclass
class GatewayFactory:
    """Starts the gateway under test in front of other upstreams, for one test."""

    name: str
    log_dir: Path
    stack: contextlib.ExitStack
    started: list[Gateway] = field(default_factory=list)

    def __call__(self, ports: list[int], overrides: Mapping[str, float] | None = None) -> Gateway:
        log_dir = self.log_dir / f"{self.name}-{len(self.started)}"
        gateway = self.stack.enter_context(running(self.name, ports, log_dir, overrides))
        self.started.append(gateway)
        return gateway
