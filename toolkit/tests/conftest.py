"""A real HTTP server on 127.0.0.1 whose answers each test sets."""

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


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
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
