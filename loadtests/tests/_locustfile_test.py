"""`locust -f loadtests` sees exactly one user class and refuses bad options in one line.

Locust is run as a subprocess: it monkey-patches the process it runs in.
"""

import subprocess
import sys
from pathlib import Path

LOADTESTS = Path(__file__).resolve().parent.parent


def locust(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(LOADTESTS), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_directory_yields_only_the_gateway_user() -> None:
    done = locust("--list")

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Available", "Users:", "GatewayUser"]


def test_a_bad_phase_length_is_refused_with_one_line() -> None:
    done = locust("--headless", "--host", "http://127.0.0.1:9", "--fault-seconds", "0")

    assert done.returncode == 2
    assert "error: --fault-seconds must be positive, got 0.0" in done.stderr.splitlines()
