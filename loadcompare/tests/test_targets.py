"""Choosing the gateways to compare: described ones by name, others by URL on 127.0.0.1."""

import argparse
from pathlib import Path

import pytest

from loadcompare import targets
from loadcompare.cli import main, parse_gateways
from loadcompare.targets import Gateway, default_gateways, make_target


def test_default_comparison_is_ours_and_nginx_at_their_deployed_urls() -> None:
    expected = (
        Gateway("ours", "http://127.0.0.1:8000"),
        Gateway("nginx", "http://127.0.0.1:8080"),
    )
    assert default_gateways() == expected


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


def test_a_bad_description_file_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GATEWAY_FILES", str(tmp_path / "missing.toml"))
    targets._deployments.cache_clear()
    try:
        assert main(["--short"]) == 2
    finally:
        targets._deployments.cache_clear()
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "missing.toml: cannot read it" in err
