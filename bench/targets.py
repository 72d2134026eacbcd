"""Starting the storage services and each gateway as local processes on free ports."""

import getpass
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

from bench.caddy_config import render_caddy
from bench.haproxy_config import render_haproxy
from bench.nginx_config import main_directives, render, render_static
from bench.processes import BenchError, Child, Children, free_port, http_get, pinned, wait_until
from bench.procstat import descendants
from bench.settings import TARGET_KINDS, BenchSettings, described
from storage_service.dataset import build_body
from toolkit.gateways import ORDER, Gateway
from toolkit.waiting import answers_200

START_TIMEOUT_S = 30.0
# Where the bench package itself is: its baselines and helper servers run from here.
BENCH_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Target:
    """Something wrk can load: a gateway, or one storage service called directly."""

    name: str
    port: int
    # The process whose tree's CPU time is charged to this target.
    root: Child

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/data"

    def cpu_pids(self) -> list[int]:
        return [self.root.pid, *descendants(self.root.pid)]


def _uvicorn(app: str, port: int, extra: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", app,
        "--host", "127.0.0.1", "--port", str(port),
        "--loop", "uvloop", "--http", "httptools", "--no-access-log",
        *extra,
    ]  # fmt: skip


def _instance(body: bytes) -> str:
    value = json.loads(body).get("instance")
    return str(value)


class Upstream(Protocol):
    """What a gateway is started in front of: named services on local ports."""

    names: list[str]
    ports: list[int]

    def child(self, index: int) -> Child:
        """The process that serves service `index` (`direct` loads it)."""
        ...


class StoragePool:
    """The storage services, each on a fixed port so they can be killed and started again."""

    def __init__(
        self,
        kids: Children,
        settings: BenchSettings,
        source_dir: Path,
        names: list[str] | None = None,
    ) -> None:
        self._kids = kids
        self._settings = settings
        self._source_dir = source_dir
        self.names = names or [f"storage{i}" for i in range(1, settings.storage_count + 1)]
        self.ports = [free_port() for _ in self.names]
        self._running: dict[int, Child] = {}

    def start(self, index: int) -> None:
        command, env = self._launch(index)
        self._running[index] = self._kids.start(
            self.names[index],
            pinned(command, self._settings.server_cpus),
            env=env,
            cwd=self._source_dir,
        )

    def _launch(self, index: int) -> tuple[list[str], dict[str, str]]:
        """The command and environment of service `index`."""
        command = _uvicorn(
            "storage_service.app:app", self.ports[index], ["--timeout-keep-alive", "75"]
        )
        env = {"INSTANCE_NAME": self.names[index], "DATA_BYTES": str(self._settings.data_bytes)}
        return command, env

    def start_missing(self) -> None:
        for index in range(len(self.ports)):
            if index not in self._running:
                self.start(index)
        self.wait_healthy()

    def wait_healthy(self) -> None:
        for index, child in self._running.items():
            health = f"http://127.0.0.1:{self.ports[index]}/health"
            wait_until(child.name, partial(answers_200, health), START_TIMEOUT_S, child)

    def kill(self, index: int) -> None:
        """SIGKILL one service: the crash a gateway must absorb."""
        self._kids.stop(self._running.pop(index), signal.SIGKILL)

    def stop_all(self) -> None:
        """SIGTERM every service at once, then wait for each."""
        stopping = list(self._running.values())
        self._running.clear()
        for child in stopping:
            if child.alive():
                child.popen.send_signal(signal.SIGTERM)
        for child in stopping:
            self._kids.stop(child)

    def child(self, index: int) -> Child:
        return self._running[index]

    def pids(self) -> list[int]:
        """The running services' processes (whose CPU is the upstream's)."""
        return [child.pid for child in self._running.values()]


class BigBodyPool(StoragePool):
    """The memory phase's upstream: one bench/bigbody.py server in the storage services' place.

    A pool like the storage services', so every gateway's start function fronts it unchanged.
    """

    def __init__(self, kids: Children, settings: BenchSettings) -> None:
        super().__init__(kids, settings, BENCH_ROOT, names=["bigbody"])

    def _launch(self, index: int) -> tuple[list[str], dict[str, str]]:
        command = [
            sys.executable, "-m", "bench.bigbody",
            "--port", str(self.ports[index]),
            "--body-bytes", str(self._settings.memory_body_bytes),
        ]  # fmt: skip
        return command, {}


class StaticUpstream:
    """The cores phase's upstream: one nginx process answering on a port per storage service
    with that service's own /data and /health bodies, for a fraction of its CPU per request.

    Nothing here is ever killed (the cores phase has no drills), so one nginx serves all, with
    `workers` worker processes.
    """

    def __init__(self, kids: Children, settings: BenchSettings, workers: int = 1) -> None:
        self.names = [f"storage{i}" for i in range(1, settings.storage_count + 1)]
        self.ports = [free_port() for _ in self.names]
        prefix = kids.log_dir / "upstream"
        prefix.mkdir(exist_ok=True)
        conf = prefix / "nginx.conf"
        conf.write_text(
            render_static(
                [
                    (
                        port,
                        build_body(name, settings.data_bytes),
                        json.dumps({"status": "available", "instance": name}).encode(),
                    )
                    for name, port in zip(self.names, self.ports, strict=True)
                ]
            )
        )
        base = nginx_command(prefix, conf, workers)
        self._child = _start_checked(
            kids, "upstream", [*base, "-t"], base, None, kids.log_dir / "upstream.log"
        )
        for port in self.ports:
            health = f"http://127.0.0.1:{port}/health"
            wait_until("upstream", partial(answers_200, health), START_TIMEOUT_S, self._child)

    def child(self, index: int) -> Child:
        return self._child


def wait_serving_all(target: Target, names: list[str], timeout_s: float = START_TIMEOUT_S) -> float:
    """Wait until the gateway has answered /data from every storage service; the seconds it took."""
    seen: set[str] = set()

    def all_seen() -> bool:
        status, body = http_get(target.port, "/data")
        if status == 200:
            seen.add(_instance(body))
        return seen >= set(names)

    return wait_until(
        f"{target.name} serving from {', '.join(names)}", all_seen, timeout_s, target.root
    )


def _log_path(kids: Children, name: str, settings: BenchSettings) -> Path:
    return Path(os.devnull) if settings.access_log == "devnull" else kids.log_dir / f"{name}.log"


def start_direct(pool: Upstream) -> Target:
    return Target("direct", pool.ports[0], pool.child(0))


def storage_services(storage_ports: list[int]) -> str:
    return ",".join(f"http://127.0.0.1:{p}" for p in storage_ports)


def gateway_env(
    gateway: str | Gateway,
    storage_ports: list[int],
    settings: BenchSettings,
    workers: int | None = None,
) -> dict[str, str]:
    """A described gateway's environment (gateways/<name>.toml, or the description itself)
    with the bench's shared settings, the same values every gateway gets; access lines on (to
    the log file); WORKERS when given, for a gateway whose description lists it."""
    values: dict[str, object] = {
        **settings.gateway,
        "STORAGE_SERVICES": storage_services(storage_ports),
        "ACCESS_LOG": True,
    }
    if workers is not None:
        values["WORKERS"] = workers
    return (described(gateway) if isinstance(gateway, str) else gateway).env(values)


def takes_workers(name: str) -> bool:
    """Whether the bench can set a gateway's worker count: the project's own gateways each
    have a way (bench/targets.py); a user's gateway does when its description lists WORKERS."""
    return name in ORDER or described(name).honours("WORKERS")


def start_gateway(
    kids: Children, pool: Upstream, settings: BenchSettings, source_dir: Path, workers: int = 1
) -> Target:
    if not (source_dir / "gateway_service" / "app.py").exists():
        raise BenchError(
            f"no gateway_service/app.py under {source_dir}; leave `gateway` out of --targets"
        )
    port = free_port()
    command = [
        sys.executable, "-m", "gateway_service",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    child = kids.start(
        "gateway",
        pinned(command, settings.server_cpus),
        env=gateway_env("gateway", pool.ports, settings),
        cwd=source_dir,
        output=_log_path(kids, "gateway", settings),
    )
    return Target("gateway", port, child)


def start_baseline(kids: Children, pool: Upstream, settings: BenchSettings, name: str) -> Target:
    """A baseline of bench/baselines/ (settings.TARGETS names its app): round robin and retry."""
    app = TARGET_KINDS[name].app
    if app is None:
        raise BenchError(f"{name} is not a baseline")
    port = free_port()
    child = kids.start(
        name,
        pinned(_uvicorn(app, port, []), settings.server_cpus),
        env={"STORAGE_SERVICES": storage_services(pool.ports)},
        cwd=BENCH_ROOT,
    )
    return Target(name, port, child)


def nginx_command(prefix: Path, conf: Path, workers: int = 1) -> list[str]:
    """nginx in the foreground with `workers` worker processes, under its own prefix."""
    # Running as root, nginx would hand its workers to `nobody`; the bench runs them as itself.
    user = getpass.getuser() if os.geteuid() == 0 else None
    return [
        "nginx", "-p", f"{prefix}/", "-c", str(conf), "-e", "stderr",
        "-g", main_directives(user, workers),
    ]  # fmt: skip


def start_nginx(
    kids: Children, pool: Upstream, settings: BenchSettings, nginx_dir: Path, workers: int = 1
) -> Target:
    port = free_port()
    prefix = kids.log_dir / "nginx"
    env = {
        **os.environ,
        **gateway_env("nginx", pool.ports, settings),
        "NGINX_LISTEN_PORT": str(port),
        "NGINX_KEEPALIVE": str(settings.upstream_keepalive),
    }
    base = nginx_command(prefix, render(nginx_dir, prefix, env), workers)
    child = _start_checked(
        kids, "nginx", [*base, "-t"], base, settings.server_cpus, _log_path(kids, "nginx", settings)
    )
    return Target("nginx", port, child)


def _start_checked(
    kids: Children,
    name: str,
    check: list[str],
    run: list[str],
    cpus: str | None,
    output: Path,
    env: dict[str, str] | None = None,
) -> Child:
    """Run a program's own config check, then the program; its complaint is the error."""
    try:
        done = subprocess.run(
            check, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False
        )
    except FileNotFoundError:
        raise BenchError(
            f"{check[0]} not found; `scripts/host-packages.sh bench` installs it, "
            f"or leave `{name}` out of --targets"
        ) from None
    if done.returncode != 0:
        # The cause ("[emerg] unknown directive ...") precedes a closing "test failed".
        said = " | ".join((done.stdout + done.stderr).strip().splitlines()[-5:])
        raise BenchError(f"{name} rejects its config ({' '.join(check)}): {said}")
    return kids.start(name, pinned(run, cpus), env=env, output=output)


def start_described(
    kids: Children, pool: Upstream, settings: BenchSettings, name: str, workers: int = 1
) -> Target:
    """A user's gateway, run by its description's `command` in the current directory."""
    port = free_port()
    command = described(name).local_command(port, sys.executable)
    child = kids.start(
        name,
        pinned(command, settings.server_cpus),
        env=gateway_env(name, pool.ports, settings, workers),
        output=_log_path(kids, name, settings),
    )
    return Target(name, port, child)


def start_haproxy(
    kids: Children, pool: Upstream, settings: BenchSettings, workers: int = 1
) -> Target:
    port = free_port()
    conf = kids.log_dir / "haproxy.cfg"
    conf.write_text(render_haproxy(port, pool.ports, settings.gateway, threads=workers))
    child = _start_checked(
        kids,
        "haproxy",
        ["haproxy", "-c", "-f", str(conf)],
        ["haproxy", "-f", str(conf), "-db"],
        settings.server_cpus,
        _log_path(kids, "haproxy", settings),
    )
    return Target("haproxy", port, child)


def start_caddy(
    kids: Children, pool: Upstream, settings: BenchSettings, workers: int = 1
) -> Target:
    port = free_port()
    home = kids.log_dir / "caddy"
    home.mkdir(exist_ok=True)
    conf = home / "Caddyfile"
    conf.write_text(render_caddy(port, pool.ports, settings.gateway))
    config = ["--config", str(conf), "--adapter", "caddyfile"]
    env = {
        # Caddy keeps its data (and an autosave of the config) under these, not the user's home.
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        # Go runs Caddy's goroutines on this many threads at once: its worker count.
        "GOMAXPROCS": str(workers),
    }
    child = _start_checked(
        kids,
        "caddy",
        ["caddy", "validate", *config],
        ["caddy", "run", *config],
        settings.server_cpus,
        _log_path(kids, "caddy", settings),
        env,
    )
    return Target("caddy", port, child)


def start_target(
    name: str,
    kids: Children,
    pool: Upstream,
    settings: BenchSettings,
    source_dir: Path,
    nginx_dir: Path,
    workers: int = 1,
) -> Target:
    """Start one target (a name of settings.TARGETS) in front of `pool`'s services, a gateway
    with `workers` workers (processes, threads or GOMAXPROCS; baselines have one process)."""
    if name == "direct":
        return start_direct(pool)
    if name == "gateway":
        return start_gateway(kids, pool, settings, source_dir, workers)
    if name == "nginx":
        return start_nginx(kids, pool, settings, nginx_dir, workers)
    if name == "haproxy":
        return start_haproxy(kids, pool, settings, workers)
    if name == "caddy":
        return start_caddy(kids, pool, settings, workers)
    if TARGET_KINDS[name].app is None:
        return start_described(kids, pool, settings, name, workers)
    return start_baseline(kids, pool, settings, name)


def start_targets(
    kids: Children, pool: Upstream, settings: BenchSettings, source_dir: Path, nginx_dir: Path
) -> list[Target]:
    """Start every target named in the settings and wait until each serves from every service."""
    started = [
        start_target(name, kids, pool, settings, source_dir, nginx_dir) for name in settings.targets
    ]
    for target in started:
        names = pool.names[:1] if target.name == "direct" else pool.names
        wait_serving_all(target, names)
    return started
