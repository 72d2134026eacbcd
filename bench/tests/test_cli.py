"""Command-line settings of `python -m bench`."""

import pytest

from bench.cli import parse_args


def test_defaults_pin_servers_and_wrk_to_different_cpus() -> None:
    settings, _ = parse_args([])
    assert (settings.server_cpus, settings.client_cpus) == ("0", "1")
    assert (settings.connections, settings.duration_s, settings.rounds) == (32, 10, 3)


def test_smoke_is_one_short_round_that_still_drills_failover() -> None:
    settings, _ = parse_args(["--smoke"])
    assert settings.smoke
    assert settings.rounds == 1
    assert settings.duration_s <= 3
    assert settings.failover


def test_pinning_can_be_turned_off() -> None:
    settings, _ = parse_args(["--server-cpus", "none", "--client-cpus", "none"])
    assert (settings.server_cpus, settings.client_cpus) == (None, None)


def test_an_unknown_target_is_refused_with_the_valid_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--targets", "direct,envoy"])
    assert "direct, gateway, nginx, haproxy" in capsys.readouterr().err


def test_the_textbook_baseline_is_measured_only_when_asked_for() -> None:
    default, _ = parse_args([])
    asked, _ = parse_args(["--targets", "gateway,nginx,fastapi-httpx"])
    assert "fastapi-httpx" not in default.targets
    assert asked.targets == ("gateway", "nginx", "fastapi-httpx")
