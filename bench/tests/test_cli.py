"""Command-line settings of `python -m bench`."""

import platform
import subprocess
import sys

import pytest

from bench.cli import PACKAGES, TOOLS, machine_and_versions, parse_args
from bench.settings import GATEWAYS, MIB, TARGETS
from bench.targets import BENCH_ROOT


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
    assert "direct, gateway, nginx, haproxy, caddy" in capsys.readouterr().err


def test_every_gateway_and_direct_are_measured_by_default() -> None:
    default, _ = parse_args([])
    assert default.targets == ("direct", "gateway", "nginx", "haproxy", "caddy")


def test_the_textbook_baseline_is_measured_only_when_asked_for() -> None:
    default, _ = parse_args([])
    asked, _ = parse_args(["--targets", "gateway,nginx,fastapi-httpx"])
    assert "fastapi-httpx" not in default.targets
    assert asked.targets == ("gateway", "nginx", "fastapi-httpx")


def test_the_client_baselines_are_measured_only_when_asked_for() -> None:
    default, _ = parse_args([])
    asked, _ = parse_args(["--targets", "gateway,nginx,asgi-aiohttp,asgi-pyreqwest"])
    assert not {"asgi-aiohttp", "asgi-pyreqwest"} & set(default.targets)
    assert asked.targets == ("gateway", "nginx", "asgi-aiohttp", "asgi-pyreqwest")


def test_every_baseline_names_an_app_in_bench_baselines_and_gets_no_drills() -> None:
    baselines = [t for t in TARGETS if t.app is not None]
    assert {t.name for t in baselines} == {"fastapi-httpx", "asgi-aiohttp", "asgi-pyreqwest"}
    for target in baselines:
        module, _, attribute = target.app.partition(":")  # type: ignore[union-attr]
        assert (BENCH_ROOT / (module.replace(".", "/") + ".py")).is_file()
        assert attribute == "app"
        assert not target.default
    assert GATEWAYS == ("gateway", "nginx", "haproxy", "caddy")


def test_the_memory_phase_is_on_by_default_and_can_be_skipped_or_resized() -> None:
    default, _ = parse_args([])
    skipped, _ = parse_args(["--no-memory"])
    resized, _ = parse_args(["--memory-clients", "3", "--memory-body-mib", "50"])
    assert default.memory
    assert not skipped.memory
    assert (resized.memory_clients, resized.memory_body_bytes) == (3, 50 * MIB)


def test_help_lists_every_target_with_its_description(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    out = capsys.readouterr().out
    for target in TARGETS:
        assert f"{target.name} " in out
        assert target.description in out


def test_the_results_state_the_machine_and_every_version_the_report_names() -> None:
    stated = machine_and_versions()

    assert list(stated)[:4] == ["nproc", "cpu_model", "kernel", "python"]
    for name in (*PACKAGES, *TOOLS):
        assert isinstance(stated[name], str)
    assert stated["python"] == platform.python_version()


EXAMPLE = BENCH_ROOT / "docs" / "examples" / "passive-gateway.toml"


@pytest.mark.parametrize(
    "option",
    [["--gateway-file", str(EXAMPLE)], [f"--gateway-file={EXAMPLE}"], ["--gateway", str(EXAMPLE)]],
)
def test_a_gateway_file_adds_its_gateway_to_the_targets(option: list[str]) -> None:
    """However argparse lets the option be spelled, the file is read before the targets are."""
    done = subprocess.run(
        [sys.executable, "-m", "bench", *option, "--targets", "direct,passive-gateway", "--help"],
        capture_output=True,
        text=True,
        cwd=BENCH_ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "passive-gateway our gateway with HEALTH_INTERVAL=0" in done.stdout


def test_an_unreadable_gateway_file_is_one_line_and_status_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--gateway-file", "/nonexistent/mine.toml"],
        capture_output=True,
        text=True,
        cwd=BENCH_ROOT,
        check=False,
    )
    assert done.returncode == 2
    assert (
        done.stderr == "bench: /nonexistent/mine.toml: cannot read it (No such file or directory)\n"
    )


def test_the_cores_phase_measures_1_and_2_workers_by_default_and_can_be_skipped() -> None:
    default, _ = parse_args([])
    skipped, _ = parse_args(["--no-cores"])
    chosen, _ = parse_args(["--cores", "4,1,2,2"])
    assert default.cores == (1, 2)
    assert skipped.cores == ()
    assert chosen.cores == (1, 2, 4)


def test_the_smoke_run_keeps_the_cores_phase() -> None:
    settings, _ = parse_args(["--smoke"])
    assert settings.cores == (1, 2)


@pytest.mark.parametrize("counts", ["0,1", "two", ","])
def test_worker_counts_must_be_whole_numbers_from_1(
    counts: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--cores", counts])
    assert "worker counts like 1,2" in capsys.readouterr().err
