"""Gateway description files: what a valid one gives, and what a wrong one is told."""

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from toolkit.gateways import GatewayFileError, common_settings, load, parse, read, user_files

MINIMAL: dict[str, Any] = {
    "name": "mine",
    "summary": "a user's gateway",
    "image": "example/mine:1",
    "port": 9000,
    "settings": ["STORAGE_SERVICES", "READ_TIMEOUT"],
    "capabilities": {"active_health": False, "counts_requests": False, "status": True},
}


def with_(**changes: Any) -> dict[str, Any]:
    return {**MINIMAL, **changes}


class TestValid:
    def test_every_project_description_loads(self) -> None:
        names = [g.name for g in load()]
        assert names == ["gateway", "nginx", "haproxy", "caddy"]

    def test_minimal_file_has_defaults(self) -> None:
        gateway = parse(MINIMAL)
        assert gateway.default is True
        assert gateway.deviations == {}
        assert gateway.hostile_deviations == {}
        assert gateway.deploy is None
        assert gateway.command == ()
        assert gateway.capabilities.runtime_api == ""

    def test_a_command_gets_the_port_and_the_interpreter(self) -> None:
        gateway = parse(with_(command=["{python}", "-m", "mine", "--listen=127.0.0.1:{port}"]))
        assert gateway.local_command(9100, "/venv/bin/python") == [
            "/venv/bin/python",
            "-m",
            "mine",
            "--listen=127.0.0.1:9100",
        ]

    def test_only_honoured_settings_reach_the_environment(self) -> None:
        gateway = parse(MINIMAL)
        env = gateway.env({"STORAGE_SERVICES": "http://a:1", "READ_TIMEOUT": 2.0, "MAX_FAILS": 3})
        assert env == {"STORAGE_SERVICES": "http://a:1", "READ_TIMEOUT": "2.0"}

    def test_a_renamed_setting_is_passed_under_its_name_and_unit(self) -> None:
        gateway = parse(with_(rename={"READ_TIMEOUT": {"env": "UPSTREAM_READ_MS", "unit": "ms"}}))
        env = gateway.env({"READ_TIMEOUT": 2.5})
        assert env == {"UPSTREAM_READ_MS": "2500"}

    def test_fixed_values_win_over_chosen_and_defaults(self) -> None:
        gateway = parse(with_(fixed={"HEALTH_RISE": 1}))
        assert gateway.value("HEALTH_RISE", {"HEALTH_RISE": 5}) == 1
        assert gateway.value("READ_TIMEOUT", {}) == common_settings()["READ_TIMEOUT"]

    def test_the_image_can_be_overridden_per_gateway(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CONTRACT_MY_GW_IMAGE", "registry.example/my-gw:2")
        assert parse(with_(name="my-gw")).image == "registry.example/my-gw:2"


class TestRefused:
    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            ({k: v for k, v in MINIMAL.items() if k != "image"}, r"`image` is missing"),
            (with_(port="9000"), r"`port` must be an integer, not '9000'"),
            (with_(image=" "), r"`image` is empty"),
            (with_(port=True), r"`port` must be an integer, not True"),
            (with_(port=70000), r"port 70000 is not a TCP port"),
            (with_(name="my gateway"), r"name 'my gateway' must be letters"),
            (with_(colour="blue"), r"unknown key\(s\) colour"),
            (with_(command=["mine", "--port", "8080"]), r"where the port goes \(\{port\}\)"),
            (with_(command=["mine", "", "{port}"]), r"`command` must be a list of non-empty"),
            (with_(command="mine {port}"), r"`command` must be a list"),
            (with_(settings=["STORAGE_SERVICES", "READ_TIMEOUTS"]), r"'READ_TIMEOUTS'.*known:"),
            (with_(settings=["READ_TIMEOUT"]), r"must include STORAGE_SERVICES"),
            (with_(rename={"MAX_FAILS": {"env": "X"}}), r"MAX_FAILS is not listed in `settings`"),
            (
                with_(rename={"READ_TIMEOUT": {"env": "X", "unit": "min"}}),
                r"unit 'min' is not one of s, ms",
            ),
            (with_(rename={"READ_TIMEOUT": "X"}), r"rename.READ_TIMEOUT must be a table"),
            (with_(fixed={"HEALTH_RISE": "one"}), r"fixed.HEALTH_RISE must be a number"),
            (with_(deviations={"x": 1}), r"deviations.x must be a string"),
            (with_(hostile_deviations={"x": 2}), r"hostile_deviations.x must be a string"),
            (with_(hostile_deviations={"x": " "}), r"hostile_deviations.x needs a reason"),
            (with_(hostile_deviations=["x"]), r"`hostile_deviations` must be a table"),
            (
                with_(
                    capabilities={"active_health": False, "counts_requests": True, "status": False}
                ),
                r"counts_requests needs status",
            ),
            (with_(capabilities={"active_health": False}), r"`counts_requests` is missing"),
            (
                with_(capabilities={**MINIMAL["capabilities"], "runtime_api": "envoy"}),
                r"runtime_api 'envoy' is not one of gateway, haproxy, caddy",
            ),
            (
                with_(capabilities={**MINIMAL["capabilities"], "runtime_api": "haproxy"}),
                r"runtime_api needs ADMIN_PORT in `settings`",
            ),
        ],
    )
    def test_a_wrong_description_is_refused_with_the_field(
        self, raw: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(GatewayFileError, match=message):
            parse(raw)

    def test_invalid_toml_names_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "bad.toml"
        path.write_text('name = "x\n')
        with pytest.raises(GatewayFileError, match=r"bad.toml: not valid TOML"):
            read(path)

    def test_a_missing_file_names_the_file(self, tmp_path: Path) -> None:
        with pytest.raises(GatewayFileError, match=r"nope.toml: cannot read it"):
            read(tmp_path / "nope.toml")


def test_a_file_named_by_option_and_environment_is_read_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first, second = tmp_path / "a.toml", tmp_path / "b.toml"
    monkeypatch.setenv("GATEWAY_FILES", f"{first}:{second}")
    assert user_files([str(first)]) == [first, second]


def test_each_deploy_section_matches_the_makefile_and_its_compose_file() -> None:
    """`make` cannot read TOML before the virtualenv exists, so the Makefile names the compose
    files too: this holds the two to the same file, target and published port."""
    root = Path(__file__).resolve().parents[2]
    makefile = (root / "Makefile").read_text()
    for gateway in load():
        deploy = gateway.deploy
        if deploy is None:
            continue
        port = urlsplit(deploy.url).port
        recipe = re.search(rf"^{re.escape(deploy.make_target)}:.*\n\t(.+)$", makefile, re.M)
        assert recipe is not None, f"{gateway.name}: no `{deploy.make_target}` target"
        compose = re.search(r"\$\((COMPOSE_\w+)\)", recipe.group(1))
        assert compose is not None, recipe.group(1)
        definition = re.search(rf"^{compose.group(1)} = .* -f (\S+)$", makefile, re.M)
        assert definition is not None, compose.group(1)
        assert definition.group(1) == deploy.compose_file, gateway.name
        assert f",{port}," in recipe.group(1), recipe.group(1)
        published = (root / deploy.compose_file).read_text()
        assert re.search(rf'"127\.0\.0\.1:\$\{{\w+:-{port}\}}:', published), gateway.name
