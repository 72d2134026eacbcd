"""Choosing gateways behaves as the suite relies on (the waits are tested in toolkit/tests)."""

import pytest

from tests.harness.gateways import GATEWAYS, GatewaySpec, selected


class TestSelected:
    def test_default_is_every_default_gateway(self) -> None:
        assert selected("") == tuple(g for g in GATEWAYS if g.default)
        assert [g.name for g in selected("")][:3] == ["gateway", "nginx", "haproxy"]

    def test_a_gateway_outside_the_default_set_can_be_named(self) -> None:
        assert [g.name for g in selected("caddy")] == ["caddy"]

    def test_named_subset_in_the_given_order(self) -> None:
        assert [g.name for g in selected("nginx, gateway")] == ["nginx", "gateway"]

    def test_unknown_name_is_refused_with_the_known_ones(self) -> None:
        with pytest.raises(
            ValueError, match=r"unknown gateway.*traefik.*known: gateway, nginx, haproxy, caddy"
        ):
            selected("traefik")


class TestGatewaySettings:
    @pytest.mark.parametrize("spec", GATEWAYS, ids=[g.name for g in GATEWAYS])
    def test_every_gateway_gets_the_storage_services_in_order(self, spec: GatewaySpec) -> None:
        urls = ["http://storage1:8000", "http://storage2:8000"]
        env = spec.environment(urls)

        assert env["STORAGE_SERVICES"] == ",".join(urls)
