"""The gateway settings a deployment passes to its containers, as one env file.

    python -m gateway_service.deploy_env BASE_FILE OUT_FILE

Reads BASE_FILE (`gateway.env` unless GATEWAY_ENV_FILE names another: one SETTING=value per
line), lays over it every gateway setting set in the environment (so `HEALTH_INTERVAL=7 make
deploy` works), checks the result as the gateway would, and writes OUT_FILE for compose's and
the swarm stack's `env_file`. A bad line or value stops the deployment with one line and exit
status 2 before any container starts. STORAGE_SERVICES belongs to the compose or stack file (it
names that deployment's storage services), so it is refused here.
"""

import os
import sys
from pathlib import Path

from gateway_service.settings import GatewaySettings, SettingsError, load_settings

SETTINGS = tuple(name.upper() for name in GatewaySettings.model_fields)
TOPOLOGY = "STORAGE_SERVICES"
# Only to let the check run: the deployment's own STORAGE_SERVICES replaces it.
PLACEHOLDER_STORAGE = "http://storage:8000"


class EnvFileError(Exception):
    """A line or value that the gateway would refuse; the message is one line."""


def read_env_file(path: Path) -> dict[str, str]:
    """SETTING=value lines; blank lines and # comments are skipped. Names must be settings."""
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise EnvFileError(f"cannot read {path}: {error.strerror}") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, equals, value = line.partition("=")
        name = name.strip()
        where = f"{path}:{number}"
        if not equals:
            raise EnvFileError(f"{where}: expected SETTING=value, got {line!r}")
        if name == TOPOLOGY:
            raise EnvFileError(f"{where}: {TOPOLOGY} is set by the compose or stack file")
        if name not in SETTINGS:
            raise EnvFileError(
                f"{where}: {name!r} is not a gateway setting ({', '.join(SETTINGS)})"
            )
        values[name] = value.strip()
    return values


def merged(base: dict[str, str], environ: dict[str, str]) -> dict[str, str]:
    """The base file's values, with every setting set in `environ` laid over them."""
    values = dict(base)
    for name in SETTINGS:
        if name != TOPOLOGY and name in environ:
            values[name] = environ[name]
    load = {name.lower(): value for name, value in values.items()}
    try:
        load_settings(**{"storage_services": PLACEHOLDER_STORAGE, **load})
    except SettingsError as error:
        raise EnvFileError(str(error)) from None
    return values


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m gateway_service.deploy_env BASE_FILE OUT_FILE", file=sys.stderr)
        return 2
    base_path, out_path = Path(argv[0]), Path(argv[1])
    try:
        base = read_env_file(base_path)
        values = merged(base, dict(os.environ))
    except EnvFileError as error:
        print(f"gateway settings: {error}", file=sys.stderr)
        return 2
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    if values:
        shown = " ".join(f"{name}={value}" for name, value in values.items())
        print(f"gateway settings: {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
