"""Settings are validated at start-up: one clear line and exit 2 on anything wrong."""

import subprocess
import sys
from pathlib import Path

import pytest

from gateway_service.settings import SettingsError, load_settings


class TestStorageServices:
    def test_a_comma_separated_list_is_parsed_in_order(self) -> None:
        settings = load_settings(storage_services="http://a:1, http://b:2,http://c")
        assert [s.url for s in settings.storage_services] == [
            "http://a:1",
            "http://b:2",
            "http://c:80",
        ]
        assert settings.storage_services[2].host_header == "c"

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ("", "must list at least one storage base URL"),
            ("http://a:1,,http://b:2", "entry 2 is empty"),
            ("http://a:1,", "entry 2 is empty"),
            ("http://a:1,http://a:1", "'http://a:1' is listed twice"),
            ("storage1:8000", "must start with http://"),
            ("https://a", "must start with http://"),
            ("http://a:99999", "has an invalid port"),
            ("http://a/data", "no path, query or fragment"),
            ("http://user:pw@a", "must not carry credentials"),
            ("http://:80", "has no host"),
            (f"http://{'a' * 64}.example:80", "is neither an IP address nor a DNS name"),
            (f"http://{'a.' * 130}example", "is neither an IP address nor a DNS name"),
            ("http://-storage-:80", "is neither an IP address nor a DNS name"),
            ("http://stor%20age:80", "is neither an IP address nor a DNS name"),
        ],
    )
    def test_bad_values_are_refused_naming_setting_and_value(
        self, value: str, message: str
    ) -> None:
        with pytest.raises(SettingsError) as error:
            load_settings(storage_services=value)
        text = str(error.value)
        assert f"STORAGE_SERVICES={value!r}" in text
        assert message in text
        assert "\n" not in text

    def test_names_docker_and_kubernetes_give_are_accepted(self) -> None:
        entries = "http://tasks.sa-swarm_storage:8000,http://storage.ns.svc.cluster.local.:8000"
        settings = load_settings(storage_services=entries + ",http://10.0.0.1,http://[::1]:8000")
        hosts = [storage.host for storage in settings.storage_services]
        assert hosts == [
            "tasks.sa-swarm_storage",
            "storage.ns.svc.cluster.local.",
            "10.0.0.1",
            "::1",
        ]

    def test_missing_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("STORAGE_SERVICES", raising=False)
        with pytest.raises(SettingsError, match="STORAGE_SERVICES is required but not set"):
            load_settings()


class TestOtherSettings:
    def test_defaults(self) -> None:
        settings = load_settings(storage_services="http://a")
        assert (settings.connect_timeout, settings.read_timeout) == (1.0, 5.0)
        assert (settings.max_fails, settings.fail_timeout) == (1, 10.0)
        assert (settings.health_interval, settings.health_rise, settings.health_fall) == (2.0, 2, 2)

    def test_resilience_defaults_keep_the_seed_behaviour(self) -> None:
        settings = load_settings(storage_services="http://a")
        assert (settings.slow_start, settings.balancing) == (0.0, "round_robin")
        assert settings.max_ejection_percent == 100
        assert (settings.retry_budget_percent, settings.retry_budget_min) == (100.0, 3)

    @pytest.mark.parametrize(
        ("name", "value"),
        [("read_timeout", "0"), ("connect_timeout", "abc"), ("max_fails", "0"),
         ("health_rise", "-1"), ("log_format", "xml"), ("access_log", "maybe"),
         ("client_timeout", "0"), ("client_timeout", "soon"), ("max_connections", "0"),
         ("max_connections", ""), ("response_buffer_bytes", "1024"),
         ("response_buffer_bytes", "1e12"), ("slow_start", "-1"), ("slow_start", "3601"),
         ("balancing", "random"), ("max_ejection_percent", "101"),
         ("max_ejection_percent", "-1"), ("retry_budget_percent", "101"),
         ("retry_budget_percent", "lots"), ("retry_budget_min", "-1")],
    )  # fmt: skip
    def test_bad_values_are_refused(self, name: str, value: str) -> None:
        with pytest.raises(SettingsError, match=f"{name.upper()}={value!r}"):
            load_settings(storage_services="http://a", **{name: value})


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "gateway_service", "--port", "0"],
        ["-m", "uvicorn", "gateway_service.app:app", "--port", "0"],
    ],
    ids=["python -m gateway_service", "uvicorn"],
)
def test_start_with_bad_settings_exits_2_with_one_line_and_no_traceback(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, *command],
        env={"STORAGE_SERVICES": "http://a:1,,http://b", "PATH": ""},
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "gateway_service: invalid settings: STORAGE_SERVICES='http://a:1,,http://b': "
        "entry 2 is empty"
    )
