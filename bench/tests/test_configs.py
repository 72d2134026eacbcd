"""The HAProxy config the bench renders, and the listen rewrite of the project's nginx config."""

import shutil
import subprocess
from pathlib import Path

import pytest

from bench.haproxy_config import render_haproxy
from bench.nginx_config import NginxTemplateError, bind_loopback
from bench.settings import GatewaySettings


class TestHaproxy:
    def test_one_server_line_per_storage_service_with_health_checks(self) -> None:
        config = render_haproxy(8080, [9001, 9002, 9003], GatewaySettings())
        servers = [
            line.split() for line in config.splitlines() if line.strip().startswith("server ")
        ]
        assert [s[2] for s in servers] == ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"]
        assert all(s[-1] == "check" for s in servers)

    def test_the_contracts_timeouts_and_health_settings_are_carried_over(self) -> None:
        gw = GatewaySettings(connect_timeout_s=0.25, read_timeout_s=3, health_rise=4)
        config = render_haproxy(8080, [9001], gw)
        assert "timeout connect 250ms" in config
        assert "timeout server 3000ms" in config
        assert " rise 4 " in config

    def test_listens_on_loopback_only(self) -> None:
        assert "bind 127.0.0.1:8123" in render_haproxy(8123, [9001], GatewaySettings())

    @pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
    def test_haproxy_accepts_the_config(self, tmp_path: Path) -> None:
        config = tmp_path / "haproxy.cfg"
        config.write_text(render_haproxy(8080, [9001, 9002, 9003], GatewaySettings()))
        check = subprocess.run(
            ["haproxy", "-c", "-f", str(config)], capture_output=True, check=False
        )
        assert check.returncode == 0, check.stdout + check.stderr


class TestNginxListen:
    def test_the_listen_port_is_bound_to_loopback_keeping_its_parameters(self) -> None:
        conf = "server {\n    listen 18080 default_server;\n}\n"
        assert "    listen 127.0.0.1:18080 default_server;" in bind_loopback(conf, 18080)

    def test_a_config_that_does_not_listen_on_the_port_is_refused(self) -> None:
        with pytest.raises(NginxTemplateError, match="does not `listen 18080`"):
            bind_loopback("server {\n    listen 8080;\n}\n", 18080)
