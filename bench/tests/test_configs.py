"""The HAProxy and Caddy configs the bench renders, and the listen rewrite of the project's nginx
config."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.caddy_config import render_caddy
from bench.haproxy_config import render_haproxy
from bench.nginx_config import NginxTemplateError, bind_loopback, main_directives, render_static
from bench.settings import shared_settings
from caddy.render import render as caddy_render
from haproxy.render import Settings


class TestHaproxy:
    def test_one_server_line_per_storage_service_with_health_checks(self) -> None:
        config = render_haproxy(8080, [9001, 9002, 9003], shared_settings())
        servers = [
            line.split() for line in config.splitlines() if line.strip().startswith("server ")
        ]
        assert [s[2] for s in servers] == ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"]
        assert all(s[-1] == "check" for s in servers)

    def test_the_contracts_timeouts_and_health_settings_are_carried_over(self) -> None:
        gw = {**shared_settings(), "CONNECT_TIMEOUT": 0.25, "READ_TIMEOUT": 3, "HEALTH_RISE": 4}
        config = render_haproxy(8080, [9001], gw)
        assert "timeout connect 250ms" in config
        assert "timeout server 3000ms" in config
        assert " rise 4 " in config

    def test_listens_on_loopback_only(self) -> None:
        assert "bind 127.0.0.1:8123" in render_haproxy(8123, [9001], shared_settings())

    def test_one_thread_unless_told_more(self) -> None:
        assert "    nbthread 1\n" in render_haproxy(8080, [9001], shared_settings())
        assert "    nbthread 2\n" in render_haproxy(8080, [9001], shared_settings(), threads=2)

    @pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
    def test_haproxy_accepts_the_config(self, tmp_path: Path) -> None:
        config = tmp_path / "haproxy.cfg"
        config.write_text(render_haproxy(8080, [9001, 9002, 9003], shared_settings()))
        check = subprocess.run(
            ["haproxy", "-c", "-f", str(config)], capture_output=True, check=False
        )
        assert check.returncode == 0, check.stdout + check.stderr


def caddy_line(config: str, directive: str) -> list[str]:
    """The words of the Caddyfile line that starts with `directive`."""
    return next(line.split() for line in config.splitlines() if line.split()[:1] == [directive])


class TestCaddy:
    def test_one_upstream_per_storage_service_in_rotation_order(self) -> None:
        config = render_caddy(8080, [9001, 9002, 9003], shared_settings())
        assert caddy_line(config, "reverse_proxy")[1:4] == [
            "127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"
        ]  # fmt: skip
        assert caddy_line(config, "lb_policy") == ["lb_policy", "round_robin"]

    def test_the_contracts_timeouts_and_health_settings_are_carried_over(self) -> None:
        gw = {
            **shared_settings(),
            "CONNECT_TIMEOUT": 0.25,
            "HEALTH_INTERVAL": 3,
            "MAX_FAILS": 2,
            "FAIL_TIMEOUT": 7,
        }
        config = render_caddy(8080, [9001], gw)
        assert caddy_line(config, "dial_timeout") == ["dial_timeout", "250ms"]
        assert caddy_line(config, "health_interval") == ["health_interval", "3000ms"]
        assert caddy_line(config, "max_fails") == ["max_fails", "2"]
        assert caddy_line(config, "fail_duration") == ["fail_duration", "7000ms"]

    def test_listens_on_loopback_only_with_the_admin_api_off(self) -> None:
        config = render_caddy(8123, [9001], shared_settings())
        assert caddy_line(config, ":8123") == [":8123", "{"]
        assert caddy_line(config, "bind") == ["bind", "127.0.0.1"]
        assert caddy_line(config, "admin") == ["admin", "off"]

    def test_the_images_own_config_still_listens_on_every_interface(self) -> None:
        config = caddy_render(8082, ["storage1:8000"], Settings(), 10)
        assert "bind" not in [line.split()[0] for line in config.splitlines() if line.split()]

    @pytest.mark.skipif(shutil.which("caddy") is None, reason="caddy is not installed")
    def test_caddy_accepts_the_config(self, tmp_path: Path) -> None:
        config = tmp_path / "Caddyfile"
        config.write_text(render_caddy(8080, [9001, 9002, 9003], shared_settings()))
        check = subprocess.run(
            ["caddy", "validate", "--config", str(config), "--adapter", "caddyfile"],
            capture_output=True,
            # Caddy would keep its data under the user's home otherwise.
            env={**os.environ, "XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)},
            check=False,
        )
        assert check.returncode == 0, check.stdout + check.stderr


class TestNginxListen:
    def test_the_listen_port_is_bound_to_loopback_keeping_its_parameters(self) -> None:
        conf = "server {\n    listen 18080 default_server;\n}\n"
        assert "    listen 127.0.0.1:18080 default_server;" in bind_loopback(conf, 18080)

    def test_a_config_that_does_not_listen_on_the_port_is_refused(self) -> None:
        with pytest.raises(NginxTemplateError, match="does not `listen 18080`"):
            bind_loopback("server {\n    listen 8080;\n}\n", 18080)


class TestNginxWorkers:
    def test_one_worker_unless_told_more_and_the_user_when_root(self) -> None:
        assert main_directives(None) == "daemon off; worker_processes 1;"
        assert main_directives("bench", 2) == "daemon off; worker_processes 2; user bench;"


def static_config() -> str:
    return render_static(
        [
            (9001, b'{"instance":"storage1","items":[]}', b'{"status": "available"}'),
            (9002, b'{"instance":"storage2","items":[]}', b'{"status": "available"}'),
        ]
    )


class TestStaticUpstream:
    def test_a_server_per_port_on_loopback_with_its_own_data_and_health(self) -> None:
        config = static_config()
        assert "listen 127.0.0.1:9001;" in config
        assert """location / { return 200 '{"instance":"storage2","items":[]}'; }""" in config
        assert """location = /health { return 200 '{"status": "available"}'; }""" in config

    def test_keep_alive_lasts_like_the_storage_services_and_nothing_is_logged(self) -> None:
        config = static_config()
        assert "keepalive_timeout 75s;" in config
        assert "access_log off;" in config

    @pytest.mark.parametrize("body", [b"it's", b"$host", b"back\\slash"])
    def test_a_body_nginx_would_read_differently_is_refused(self, body: bytes) -> None:
        with pytest.raises(NginxTemplateError, match="cannot quote"):
            render_static([(9001, body, b"{}")])

    @pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
    def test_nginx_accepts_the_config(self, tmp_path: Path) -> None:
        conf = tmp_path / "nginx.conf"
        conf.write_text(static_config())
        check = subprocess.run(
            ["nginx", "-p", f"{tmp_path}/", "-c", str(conf), "-e", "stderr", "-t"],
            capture_output=True,
            check=False,
        )
        assert check.returncode == 0, check.stdout + check.stderr
