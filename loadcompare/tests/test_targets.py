"""Choosing the gateways to compare: described ones by name, others by URL on 127.0.0.1."""

import argparse

import pytest

from loadcompare.cli import parse_gateways
from loadcompare.targets import DEFAULT_GATEWAYS, Gateway, make_target


def test_default_comparison_is_ours_and_nginx_at_their_deployed_urls() -> None:
    expected = (
        Gateway("ours", "http://127.0.0.1:8000"),
        Gateway("nginx", "http://127.0.0.1:8080"),
    )
    assert expected == DEFAULT_GATEWAYS


def test_described_gateways_are_named_alone_and_deployable() -> None:
    chosen = parse_gateways("ours,nginx,haproxy,caddy")
    assert [g.url for g in chosen] == [
        "http://127.0.0.1:8000",
        "http://127.0.0.1:8080",
        "http://127.0.0.1:8081",
        "http://127.0.0.1:8082",
    ]
    assert [make_target(g.name) for g in chosen] == [
        "deploy",
        "deploy-nginx",
        "deploy-haproxy",
        "deploy-caddy",
    ]


def test_an_undescribed_gateway_needs_a_local_url() -> None:
    assert parse_gateways("mine=http://127.0.0.1:9000/") == (
        Gateway("mine", "http://127.0.0.1:9000"),
    )
    assert make_target("mine") is None
    with pytest.raises(argparse.ArgumentTypeError, match=r"described gateway \(ours, nginx"):
        parse_gateways("traefik")
    with pytest.raises(argparse.ArgumentTypeError, match=r"127\.0\.0\.1 only"):
        parse_gateways("mine=http://example.com:9000")
