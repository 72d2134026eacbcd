"""Choosing gateways behaves as the suite relies on (the waits are tested in toolkit/tests)."""

from pathlib import Path

import pytest

from tests.harness.gateways import EXAMPLE_FILE, SUITE_SETTINGS, GatewaySpec, available, selected
from toolkit.gateways import GatewayFileError

PROJECT = available()


class TestSelected:
    def test_default_is_every_project_gateway_ours_first(self) -> None:
        assert [g.name for g in selected("")] == ["gateway", "nginx", "haproxy", "caddy"]

    def test_named_subset_in_the_given_order(self) -> None:
        assert [g.name for g in selected("nginx, gateway")] == ["nginx", "gateway"]

    def test_unknown_name_is_refused_with_the_known_ones(self) -> None:
        with pytest.raises(
            GatewayFileError, match=r"unknown gateway.*traefik.*known: gateway, nginx, haproxy"
        ):
            selected("traefik")

    def test_a_user_file_joins_the_default_set(self) -> None:
        names = [g.name for g in selected("", [str(EXAMPLE_FILE)])]
        assert names == ["gateway", "nginx", "haproxy", "caddy", "passive-gateway"]

    def test_user_files_also_come_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("GATEWAY_FILES", str(EXAMPLE_FILE))
        assert [g.name for g in selected("passive-gateway")] == ["passive-gateway"]

    def test_a_user_file_may_not_reuse_a_project_name(self, tmp_path: Path) -> None:
        clash = tmp_path / "mine.toml"
        clash.write_text(EXAMPLE_FILE.read_text().replace('"passive-gateway"', '"nginx"'))
        with pytest.raises(GatewayFileError, match=r"mine.toml: gateway 'nginx' is already"):
            selected("", [str(clash)])


class TestSuiteSettings:
    @pytest.mark.parametrize("spec", PROJECT, ids=[g.name for g in PROJECT])
    def test_every_gateway_gets_the_storage_services_in_order(self, spec: GatewaySpec) -> None:
        urls = ["http://storage1:8000", "http://storage2:8000"]
        env = spec.environment(urls)

        assert env["STORAGE_SERVICES"] == ",".join(urls)

    def test_a_gateway_gets_only_the_settings_it_honours(self) -> None:
        (nginx,) = selected("nginx")
        env = nginx.environment(["http://storage1:8000"])
        assert "HEALTH_INTERVAL" not in env
        assert env["FAIL_TIMEOUT"] == str(SUITE_SETTINGS["FAIL_TIMEOUT"])

    def test_a_scenarios_own_values_win_and_unhonoured_ones_are_dropped(self) -> None:
        (nginx,) = selected("nginx")
        env = nginx.environment(["http://storage1:8000"], {"FAIL_TIMEOUT": 7, "HEALTH_RISE": 5})
        assert env["FAIL_TIMEOUT"] == "7"
        assert "HEALTH_RISE" not in env

    def test_a_runtime_api_gets_its_port_published_and_nginx_has_none(self) -> None:
        gateway, nginx, haproxy, caddy = selected("gateway,nginx,haproxy,caddy")
        assert [g.runtime_api for g in (gateway, nginx, haproxy, caddy)] == [
            "gateway",
            "",
            "haproxy",
            "caddy",
        ]
        assert nginx.admin_port is None
        assert haproxy.admin_port == SUITE_SETTINGS["ADMIN_PORT"]
        env = gateway.environment(["http://storage1:8000"])
        assert env["ADMIN_PORT"] == str(SUITE_SETTINGS["ADMIN_PORT"])
        assert env["ADMIN_TOKEN"] == SUITE_SETTINGS["ADMIN_TOKEN"]

    def test_timing_follows_capabilities_and_fixed_values(self) -> None:
        gateway, nginx, caddy = selected("gateway,nginx,caddy")
        assert gateway.timing.health_interval == SUITE_SETTINGS["HEALTH_INTERVAL"]
        assert nginx.timing.health_interval is None
        # Caddy has no rise/fall: its description fixes both at one probe.
        assert (caddy.timing.health_rise, caddy.timing.health_fall) == (1, 1)

    def test_a_gateway_without_status_declares_it_as_a_deviation(self) -> None:
        (caddy,) = selected("caddy")
        assert not caddy.has_status
        assert "no-status" in caddy.deviations
        (gateway,) = selected("gateway")
        assert "no-status" not in gateway.deviations

    def test_the_example_file_runs_our_image_passively(self) -> None:
        (example,) = selected("passive-gateway", [str(EXAMPLE_FILE)])
        env = example.environment(["http://storage1:8000"])
        assert env["HEALTH_INTERVAL"] == "0"
        assert not example.active_health
        assert example.timing.health_interval is None


class TestSeveralWorkers:
    def test_the_variant_is_named_for_its_workers_and_told_how_many(self) -> None:
        (gateway,) = selected("gateway")
        several = gateway.with_workers(2)
        assert (gateway.name, several.name) == ("gateway", "gateway-x2")
        assert gateway.environment(["http://storage1:8000"])["WORKERS"] == "1"
        assert several.environment(["http://storage1:8000"])["WORKERS"] == "2"

    def test_a_gateway_that_cannot_be_told_gets_no_variant(self) -> None:
        (example,) = selected("passive-gateway", [str(EXAMPLE_FILE)])
        assert not example.takes_workers
        assert "WORKERS" not in example.environment(["http://storage1:8000"])

    def test_a_workers_deviation_applies_only_with_several_workers(self, tmp_path: Path) -> None:
        mine = tmp_path / "mine.toml"
        text = EXAMPLE_FILE.read_text().replace('"RETRY_AFTER",', '"RETRY_AFTER", "WORKERS",')
        mine.write_text(
            text.replace(
                "[deviations]",
                '[deviations]\n"strict-rotation@workers" = "each worker keeps its own rotation"',
            )
        )
        (one,) = selected("passive-gateway", [str(mine)])
        assert "strict-rotation" not in one.deviations
        several = one.with_workers(2)
        assert several.deviations["strict-rotation"] == "each worker keeps its own rotation"
        assert "strict-rotation@workers" not in several.deviations
