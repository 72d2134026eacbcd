from gateway_service.settings import GatewaySettings
from loadcompare.machine import SETTING_NAMES, machine


def test_every_gateway_setting_is_stated_by_its_environment_name() -> None:
    assert {name.upper() for name in GatewaySettings.model_fields} <= set(SETTING_NAMES)
    assert {"READ_TIMEOUT", "DISCOVERY_INTERVAL", "CLIENT_TIMEOUT"} <= set(SETTING_NAMES)


def test_the_storage_settings_are_stated_but_not_the_instance_name() -> None:
    assert {"DATA_BYTES", "ENABLE_FAULT_INJECTION"} <= set(SETTING_NAMES)
    assert "INSTANCE_NAME" not in SETTING_NAMES


def test_the_summary_states_machine_versions_and_commit() -> None:
    stated = machine()

    assert list(stated) == ["machine", "os", "python", "locust", "compose", "git commit"]
    assert " cores, " in stated["machine"]
    assert stated["locust"] != "not installed"
