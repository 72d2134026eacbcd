"""Real HTTP servers on 127.0.0.1: one whose answers each test sets, and the storage service."""

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import uvicorn

from storage_service.app import create_app
from storage_service.settings import StorageSettings
from toolkit.waiting import wait_until


@dataclass
class Answers:
    """path -> (status, body); a path not listed answers 404."""

    routes: dict[str, tuple[int, bytes]] = field(default_factory=dict)

    def json(self, path: str, document: object, status: int = 200) -> None:
        self.routes[path] = (status, json.dumps(document).encode())


@dataclass
class Server:
    url: str
    answers: Answers


@pytest.fixture
def server() -> Iterator[Server]:
    answers = Answers()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = answers.routes.get(self.path, (404, b"not found"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep the test output to the tests' own

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", answers)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def closed_port_url() -> str:
    """A URL nothing listens on (a port bound and released a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _serve_storage(enabled: bool) -> Iterator[str]:
    """The real storage service (instance "s1") on 127.0.0.1, in this process."""
    settings = StorageSettings(instance_name="s1", enable_fault_injection=enabled)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=10.0, what="the storage service to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def storage() -> Iterator[str]:
    """The storage service with its fault endpoint on."""
    yield from _serve_storage(enabled=True)


@pytest.fixture
def storage_without_faults() -> Iterator[str]:
    yield from _serve_storage(enabled=False)
