"""`locust -f loadtests` sees exactly one user class, refuses bad options in one line, and counts
every response once when its users run on worker processes.

Locust is run as a subprocess: it monkey-patches the process it runs in.
"""

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from loadcompare.matrix import distributed_options
from loadcompare.paths import LOCUSTFILES
from loadcompare.results import RunResult


def locust(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILES), *args],
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


class ThreeInstances(BaseHTTPRequestHandler):
    """Answers like a gateway in front of three storage services, in turn."""

    served = 0

    def do_GET(self) -> None:
        ThreeInstances.served += 1
        body = json.dumps({"instance": f"storage{ThreeInstances.served % 3 + 1}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ThreeInstances)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# The options the comparison gives locust for `--workers N`.
@pytest.mark.parametrize("workers", [0, 2], ids=["local runner", "two worker processes"])
def test_every_response_is_counted_once(gateway: str, tmp_path: Path, workers: int) -> None:
    stats = tmp_path / "steady.json"

    done = locust(
        "--headless", "--host", gateway, "--steady-seconds", "2", "-u", "4", "--user-rps", "5",
        "--stats-json", str(stats), *distributed_options(workers),
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    result = RunResult.read(stats)
    assert result.settings.workers == workers
    assert result.error is None
    assert result.locust.requests > 0
    assert sum(result.share.values()) == result.locust.requests
    assert "Share per storage instance (steady," in done.stdout
