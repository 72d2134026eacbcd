"""HAProxy's and Caddy's configs are rendered from the gateway's setting names, and bad ones
stop the container with one line."""

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest

from caddy.render import FAIL_TIMEOUT_DEFAULT_S
from caddy.render import main as caddy_main
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
    }

    def test_haproxy_and_caddy_defaults_are_the_gateways(self) -> None:
        gateway = common_settings()
        haproxy = Settings()
        assert {name: getattr(haproxy, field) for field, name in self.NAMES.items()} == {
            name: gateway[name] for name in self.NAMES.values()
        }
        assert gateway["FAIL_TIMEOUT"] == FAIL_TIMEOUT_DEFAULT_S

    def test_nginx_defaults_are_the_gateways(self) -> None:
        script = (REPO / "nginx" / "env.sh").read_text()
        defaults = dict(re.findall(r'"\$\{([A-Z_]+):-([^}]*)\}"', script))
        access_log = re.search(r"\$\{ACCESS_LOG:-(\w+)\}", script)
        assert access_log is not None, "nginx/env.sh no longer reads ACCESS_LOG"
        defaults["ACCESS_LOG"] = access_log.group(1)
        gateway = common_settings()
        shared = sorted(n for n in set(defaults) & set(gateway) if gateway[n] is not None)
        assert len(shared) >= 7, shared
        for name in shared:
            value = gateway[name]
            expected = str(value).lower() if isinstance(value, bool) else value
            actual = defaults[name] if isinstance(value, bool) else type(value)(defaults[name])
            assert actual == expected, f"nginx/env.sh: {name} defaults to {defaults[name]}"
