"""The nginx, HAProxy and Caddy images take the gateway's setting names: HAProxy's and Caddy's
configs are rendered from them, nginx's entrypoint passes WORKERS and SHUTDOWN_TIMEOUT to nginx,
and a bad value stops the container with one line and status 2."""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest

from caddy.render import FAIL_TIMEOUT_DEFAULT_S
from caddy.render import main as caddy_main
from gateway_service.settings import MAX_WORKERS
from haproxy.render import MAX_WORKERS as PROXY_MAX_WORKERS
from haproxy.render import SettingError, Settings, settings_from, storage_authorities
from haproxy.render import main as haproxy_main
from toolkit.gateways import common_settings

REPO = Path(__file__).resolve().parents[2]
STORAGE = "http://storage1:8000, http://storage2:8000/,http://storage3:8000"


def rendered(main: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in {"STORAGE_SERVICES": STORAGE, **env}.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "config"
    assert callable(main)
    assert main(["render", str(out)]) == 0
    return out.read_text()


class TestSettings:
    def test_storage_services_become_authorities_in_order(self) -> None:
        assert storage_authorities(STORAGE) == ["storage1:8000", "storage2:8000", "storage3:8000"]

    @pytest.mark.parametrize(
        ("env", "message"),
        [
            ({"CONNECT_TIMEOUT": "soon"}, "CONNECT_TIMEOUT must be a positive number"),
            ({"HEALTH_RISE": "0"}, "HEALTH_RISE must be an integer >= 1"),
            ({"ACCESS_LOG": "maybe"}, "ACCESS_LOG must be true or false"),
            ({"WORKERS": "0"}, "WORKERS must be an integer from 1 to 64, got '0'"),
            ({"WORKERS": "65"}, "WORKERS must be an integer from 1 to 64, got '65'"),
            ({"WORKERS": "two"}, "WORKERS must be an integer from 1 to 64"),
            # Set but empty is a mistake for the gateway too, not "unset".
            ({"WORKERS": ""}, "WORKERS must be an integer from 1 to 64, got ''"),
            ({"SHUTDOWN_TIMEOUT": "0"}, "SHUTDOWN_TIMEOUT must be a positive number"),
            ({"BALANCING": "random"}, "BALANCING must be one of round_robin, least_request"),
            ({"SLOW_START": "-1"}, "SLOW_START must be a non-negative number"),
            ({"ADMIN_PORT": "70000"}, "ADMIN_PORT must be a TCP port"),
            ({"ADMIN_HOST": "any"}, "ADMIN_HOST must be an IPv4 address"),
        ],
    )
    def test_a_bad_value_is_named(self, env: dict[str, str], message: str) -> None:
        with pytest.raises(SettingError, match=message):
            settings_from(env)

    def test_a_url_with_a_path_is_refused(self) -> None:
        with pytest.raises(SettingError, match="without a path"):
            storage_authorities("http://storage1:8000/api")

    def test_the_image_prints_one_line_and_exits_2(self, tmp_path: Path) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "haproxy.render", str(tmp_path / "cfg")],
            cwd=REPO,
            env={"STORAGE_SERVICES": "ftp://storage1"},
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 2
        assert result.stderr.strip().count("\n") == 0
        assert result.stderr.startswith("haproxy config: STORAGE_SERVICES entries must be")

    def test_workers_is_optional_and_bounded_like_the_gateways(self) -> None:
        assert settings_from({}).workers is None
        assert settings_from({"WORKERS": " 2 "}).workers == 2
        assert settings_from({"WORKERS": str(MAX_WORKERS)}).workers == MAX_WORKERS
        with pytest.raises(SettingError):
            settings_from({"WORKERS": str(MAX_WORKERS + 1)})


def run_entrypoint(
    name: str, tmp_path: Path, command: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """An image's entrypoint run on the host: its paths in the image point into the repository
    and `tmp_path`, and `nginx`/`caddy` are stand-ins that print their arguments and the
    GOMAXPROCS they were given, one per line."""
    script = (REPO / name / "docker-entrypoint.sh").read_text()
    for image_path, here in {
        "/usr/local/lib/service-assembly/nginx-env.sh": REPO / "nginx" / "env.sh",
        "/tmp/nginx": tmp_path / "nginx",
        "/tmp/caddy": tmp_path / "caddy",
    }.items():
        script = script.replace(image_path, str(here))
    (tmp_path / "entrypoint.sh").write_text(script)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("nginx", "caddy"):
        stand_in = bin_dir / program
        stand_in.write_text('#!/bin/sh\nprintf \'%s\\n\' "$@" "GOMAXPROCS=${GOMAXPROCS:-}"\n')
        stand_in.chmod(stand_in.stat().st_mode | stat.S_IXUSR)
    base = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
        "STORAGE_SERVICES": "http://127.0.0.1:9001,http://127.0.0.1:9002",
        # No DNS loop: addresses stand for themselves.
        "DISCOVERY_INTERVAL": "0",
        "NGINX_ENVSUBST_TEMPLATE_DIR": str(REPO / "nginx" / "templates"),
        "NGINX_ENVSUBST_OUTPUT_DIR": str(tmp_path / "conf.d"),
    }
    return subprocess.run(
        ["sh", str(tmp_path / "entrypoint.sh"), *command],
        cwd=REPO,
        env={**base, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def image_command(name: str) -> list[str]:
    """The CMD of an image's Dockerfile (exec form)."""
    found = re.search(r"^CMD (\[.*\])$", (REPO / name / "Dockerfile").read_text(), re.MULTILINE)
    assert found is not None, f"{name}/Dockerfile has no exec-form CMD"
    command: list[str] = json.loads(found.group(1))
    return command


NGINX_CMD = image_command("nginx")


class TestNginxEntrypoint:
    def test_workers_replaces_worker_processes_in_the_commands_directives(
        self, tmp_path: Path
    ) -> None:
        result = run_entrypoint(
            "nginx", tmp_path, NGINX_CMD, {"WORKERS": "2", "SHUTDOWN_TIMEOUT": "2.5"}
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[:-1] == [
            *NGINX_CMD[1:-1],
            "daemon off; worker_processes 2; worker_shutdown_timeout 2500ms;",
        ]

    def test_without_workers_nginx_keeps_auto_and_stops_within_the_gateways_default(
        self, tmp_path: Path
    ) -> None:
        result = run_entrypoint("nginx", tmp_path, NGINX_CMD, {})
        assert result.returncode == 0, result.stderr
        assert "daemon off; worker_processes auto; worker_shutdown_timeout 10000ms;" in (
            result.stdout.splitlines()
        )

    def test_a_command_without_directives_gets_them(self, tmp_path: Path) -> None:
        result = run_entrypoint("nginx", tmp_path, ["nginx", "-t"], {"WORKERS": "64"})
        assert result.stdout.splitlines()[:-1] == [
            "-t",
            "-g",
            "worker_processes 64; worker_shutdown_timeout 10000ms;",
        ]

    @pytest.mark.parametrize(
        ("env", "message"),
        [
            ({"WORKERS": "0"}, 'WORKERS must be an integer from 1 to 64, got "0"'),
            (
                {"WORKERS": str(MAX_WORKERS + 1)},
                'WORKERS must be an integer from 1 to 64, got "65"',
            ),
            ({"WORKERS": "auto"}, 'WORKERS must be an integer from 1 to 64, got "auto"'),
            ({"WORKERS": ""}, 'WORKERS must be an integer from 1 to 64, got ""'),
            ({"SHUTDOWN_TIMEOUT": "soon"}, "SHUTDOWN_TIMEOUT must be a positive number"),
        ],
    )
    def test_a_bad_value_is_one_line_and_status_2(
        self, tmp_path: Path, env: dict[str, str], message: str
    ) -> None:
        result = run_entrypoint("nginx", tmp_path, NGINX_CMD, env)
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr.startswith(f"nginx config: {message}")
        assert result.stderr.strip().count("\n") == 0, result.stderr


class TestHaproxy:
    def test_settings_are_carried_over(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = rendered(
            haproxy_main,
            tmp_path,
            monkeypatch,
            CONNECT_TIMEOUT="0.25",
            HEALTH_RISE="3",
            MAX_FAILS="2",
            RETRY_AFTER="7",
            DISCOVERY_INTERVAL="4",
        )
        assert "timeout connect 250ms" in config
        assert " rise 3 " in config
        assert "observe layer7 error-limit 2 on-error mark-down" in config
        assert "hdr Retry-After 7" in config
        assert "hold valid 4000ms" in config
        servers = [
            line.split()[1] for line in config.splitlines() if line.startswith("    server ")
        ]
        assert servers == ["storage1:8000", "storage2:8000", "storage3:8000"]

    def test_workers_is_nbthread_and_shutdown_timeout_is_hard_stop_after(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = rendered(haproxy_main, tmp_path, monkeypatch, WORKERS="3", SHUTDOWN_TIMEOUT="7")
        assert "    nbthread 3\n" in config
        assert "    hard-stop-after 7000ms\n" in config

    def test_without_workers_haproxy_chooses_its_threads(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = rendered(haproxy_main, tmp_path, monkeypatch)
        assert "nbthread" not in config
        assert "    hard-stop-after 10000ms\n" in config

    def test_a_bad_workers_stops_the_image_with_one_line_and_status_2(self, tmp_path: Path) -> None:
        result = run_entrypoint("haproxy", tmp_path, ["true"], {"WORKERS": "0"})
        assert result.returncode == 2
        assert result.stderr == "haproxy config: WORKERS must be an integer from 1 to 64, got '0'\n"

    def test_resilience_settings_map_to_haproxys_own(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        plain = rendered(haproxy_main, tmp_path, monkeypatch)
        assert "balance roundrobin" in plain
        assert "slowstart" not in plain
        assert "stats socket" not in plain
        assert "http-request set-header traceparent 00-%[uuid()" in plain
        config = rendered(
            haproxy_main,
            tmp_path,
            monkeypatch,
            BALANCING="least_request",
            SLOW_START="4",
            ADMIN_HOST="0.0.0.0",  # nosec B104: the test checks the rendering only
            ADMIN_PORT="9901",
        )
        assert "balance random(2)" in config
        assert " slowstart 4000ms" in config
        assert "    stats socket ipv4@0.0.0.0:9901 level admin\n" in config

    def test_discovery_off_resolves_once(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = rendered(haproxy_main, tmp_path, monkeypatch, DISCOVERY_INTERVAL="0")
        assert "resolvers" not in config

    @pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
    def test_haproxy_accepts_the_config(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Names that resolve here: HAProxy resolves the servers when it checks the config.
        config = rendered(
            haproxy_main,
            tmp_path,
            monkeypatch,
            STORAGE_SERVICES="http://localhost:9001,http://127.0.0.1:9002",
            WORKERS="2",
            BALANCING="least_request",
            SLOW_START="3",
            ADMIN_PORT="19901",
        )
        # The image's path to the /status script, pointed at the repository's copy.
        lua = str(REPO / "haproxy" / "status.lua")
        path = tmp_path / "haproxy.cfg"
        path.write_text(config.replace("/usr/local/lib/service-assembly/haproxy-status.lua", lua))
        check = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr


class TestCaddy:
    def test_settings_are_carried_over(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = rendered(caddy_main, tmp_path, monkeypatch, READ_TIMEOUT="3", FAIL_TIMEOUT="4")
        assert "reverse_proxy storage1:8000 storage2:8000 storage3:8000 {" in config
        assert "lb_policy round_robin" in config
        assert "response_header_timeout 3000ms" in config
        assert "fail_duration 4000ms" in config
        assert "Retry-After 1" in config

    def test_balancing_and_admin_port_map_to_caddys_own(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert "\tadmin off\n" in rendered(caddy_main, tmp_path, monkeypatch)
        config = rendered(
            caddy_main, tmp_path, monkeypatch, BALANCING="least_request", ADMIN_PORT="2019"
        )
        assert "lb_policy least_conn" in config
        assert "\tadmin 127.0.0.1:2019\n" in config

    def test_shutdown_timeout_is_the_grace_period(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = rendered(caddy_main, tmp_path, monkeypatch, SHUTDOWN_TIMEOUT="4.5")
        assert "\tgrace_period 4500ms\n" in config

    def test_workers_is_gomaxprocs(self, tmp_path: Path) -> None:
        command = ["caddy", "run", "--config", "/tmp/caddy/Caddyfile"]
        result = run_entrypoint("caddy", tmp_path, command, {"WORKERS": "3"})
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == "GOMAXPROCS=3"
        assert (tmp_path / "caddy" / "Caddyfile").exists()

    def test_without_workers_go_chooses(self, tmp_path: Path) -> None:
        result = run_entrypoint("caddy", tmp_path, ["caddy", "run"], {"GOMAXPROCS": ""})
        assert result.stdout.splitlines()[-1] == "GOMAXPROCS="

    def test_a_bad_workers_stops_the_image_with_one_line_and_status_2(self, tmp_path: Path) -> None:
        result = run_entrypoint("caddy", tmp_path, ["caddy", "run"], {"WORKERS": "many"})
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr == (
            "caddy config: WORKERS must be an integer from 1 to 64, got 'many'\n"
        )


@pytest.mark.skipif(shutil.which("envsubst") is None, reason="envsubst (gettext-base) is missing")
class TestNginx:
    """nginx's config is rendered by nginx/render-config.sh (env.sh + the template)."""

    def render(self, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", str(REPO / "nginx" / "render-config.sh"), str(tmp_path / "out")],
            env={"PATH": "/usr/bin:/bin", "STORAGE_SERVICES": "http://127.0.0.1:9001", **env},
            capture_output=True,
            text=True,
            check=False,
        )

    def test_client_timeout_bounds_a_stalled_client_both_ways(self, tmp_path: Path) -> None:
        assert self.render(tmp_path, CLIENT_TIMEOUT="2.5").returncode == 0
        config = (tmp_path / "out" / "conf.d" / "default.conf").read_text()
        for directive in ("client_header_timeout", "client_body_timeout", "send_timeout"):
            assert f"{directive} 2500ms;" in config

    def test_least_request_is_least_conn_before_keepalive(self, tmp_path: Path) -> None:
        assert self.render(tmp_path).returncode == 0
        config = (tmp_path / "out" / "conf.d" / "default.conf").read_text()
        assert "    least_conn;" not in config
        assert "proxy_set_header traceparent $sa_traceparent;" in config
        assert self.render(tmp_path, BALANCING="least_request").returncode == 0
        config = (tmp_path / "out" / "conf.d" / "default.conf").read_text()
        # nginx wants the balancing method before `keepalive`.
        assert config.index("    least_conn;") < config.index("    keepalive ")
        done = self.render(tmp_path, BALANCING="fastest")
        assert done.returncode == 2
        assert "BALANCING must be one of round_robin, least_request" in done.stderr

    def test_a_bad_client_timeout_is_named(self, tmp_path: Path) -> None:
        done = self.render(tmp_path, CLIENT_TIMEOUT="0")
        assert done.returncode == 2
        assert "CLIENT_TIMEOUT must be a positive number of seconds" in done.stderr


class TestDefaultsFollowTheGateway:
    """The images cannot import the gateway's settings (no pydantic in them), so their restated
    defaults are held here to the gateway's own: a changed default fails until all agree."""

    NAMES: ClassVar[dict[str, str]] = {
        "connect_timeout_s": "CONNECT_TIMEOUT",
        "read_timeout_s": "READ_TIMEOUT",
        "max_fails": "MAX_FAILS",
        "health_interval_s": "HEALTH_INTERVAL",
        "health_timeout_s": "HEALTH_TIMEOUT",
        "health_rise": "HEALTH_RISE",
        "health_fall": "HEALTH_FALL",
        "retry_after_s": "RETRY_AFTER",
        "discovery_interval_s": "DISCOVERY_INTERVAL",
        "access_log": "ACCESS_LOG",
        "workers": "WORKERS",
        "shutdown_timeout_s": "SHUTDOWN_TIMEOUT",
        "balancing": "BALANCING",
        "slow_start_s": "SLOW_START",
        "admin_host": "ADMIN_HOST",
        "admin_port": "ADMIN_PORT",
    }

    def test_haproxy_and_caddy_defaults_are_the_gateways(self) -> None:
        gateway = common_settings()
        haproxy = Settings()
        assert {name: getattr(haproxy, field) for field, name in self.NAMES.items()} == {
            name: gateway[name] for name in self.NAMES.values()
        }
        assert gateway["FAIL_TIMEOUT"] == FAIL_TIMEOUT_DEFAULT_S

    def test_the_images_allow_the_gateways_workers(self) -> None:
        # nginx's entrypoint spells 1..64 out as patterns; TestNginxEntrypoint tries both ends.
        assert PROXY_MAX_WORKERS == MAX_WORKERS == 64

    def test_nginx_defaults_are_the_gateways(self) -> None:
        script = "".join(
            (REPO / "nginx" / name).read_text() for name in ("env.sh", "docker-entrypoint.sh")
        )
        defaults = dict(re.findall(r'"\$\{([A-Z_]+):-([^}]*)\}"', script))
        access_log = re.search(r"\$\{ACCESS_LOG:-(\w+)\}", script)
        assert access_log is not None, "nginx/env.sh no longer reads ACCESS_LOG"
        defaults["ACCESS_LOG"] = access_log.group(1)
        gateway = common_settings()
        shared = sorted(n for n in set(defaults) & set(gateway) if gateway[n] is not None)
        assert len(shared) >= 8, shared
        assert "SHUTDOWN_TIMEOUT" in shared
        for name in shared:
            value = gateway[name]
            expected = str(value).lower() if isinstance(value, bool) else value
            actual = defaults[name] if isinstance(value, bool) else type(value)(defaults[name])
            assert actual == expected, f"nginx/env.sh: {name} defaults to {defaults[name]}"
