import pytest

from storage_service.settings import StorageSettings


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests pass their settings explicitly; a deployment's variables (ENABLE_FAULT_INJECTION=true
    # while `make loadtest` deploys, say) must not leak into them.
    for name in StorageSettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
