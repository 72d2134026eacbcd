"""The env file a deployment hands its gateway: gateway.env, the environment over it, checked."""

from pathlib import Path

import pytest

from gateway_service.deploy_env import main

BASE = "# comment\n\nHEALTH_INTERVAL=3\nREAD_TIMEOUT = 2.5\n"


def deploy(
    tmp_path: Path, base: str, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str]:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "gateway.env").write_text(base)
    out = tmp_path / "out" / "gateway.env"
    status = main([str(tmp_path / "gateway.env"), str(out)])
    return status, out.read_text() if out.exists() else ""


def test_the_environment_wins_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, written = deploy(
        tmp_path, BASE, {"HEALTH_INTERVAL": "7", "MAX_FAILS": "4"}, monkeypatch
    )
    assert status == 0
    assert written == "HEALTH_INTERVAL=7\nREAD_TIMEOUT=2.5\nMAX_FAILS=4\n"


def test_nothing_set_writes_an_empty_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert deploy(tmp_path, "", {}, monkeypatch) == (0, "")


@pytest.mark.parametrize(
    ("base", "environ", "message"),
    [
        ("", {"HEALTH_INTERVAL": "soon"}, "HEALTH_INTERVAL='soon'"),
        ("MAX_FAILS=0\n", {}, "MAX_FAILS='0'"),
        ("HEALTH_INTERVL=3\n", {}, "gateway.env:1: 'HEALTH_INTERVL' is not a gateway setting"),
        ("just words\n", {}, "gateway.env:1: expected SETTING=value"),
        (
            "STORAGE_SERVICES=http://x:1\n",
            {},
            "STORAGE_SERVICES is set by the compose or stack file",
        ),
    ],
)
def test_a_bad_setting_stops_the_deployment_with_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    base: str,
    environ: dict[str, str],
    message: str,
) -> None:
    status, written = deploy(tmp_path, base, environ, monkeypatch)
    error = capsys.readouterr().err
    assert status == 2
    assert written == ""
    assert message in error
    assert error.count("\n") == 1


def test_storage_services_in_the_environment_is_left_to_the_compose_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert deploy(tmp_path, "", {"STORAGE_SERVICES": "http://elsewhere:1"}, monkeypatch) == (0, "")


def test_a_missing_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nope.env"), str(tmp_path / "out.env")]) == 2
    assert "cannot read" in capsys.readouterr().err
