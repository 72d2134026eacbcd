"""The upstream of the memory phase: answers `GET /data` with a large body, and stays small itself.

The storage service caps its body at 1 MiB, so the memory phase puts this server behind a second
instance of each gateway:

    python -m bench.bigbody --port 9100 --body-bytes 104857600

- `GET /health` and any request whose query string has `probe`: a small JSON body (health checks
  and the bench's readiness probe must not fetch the big body);
- any other GET: `--body-bytes` bytes with a Content-Length, written from one 1 MiB buffer
  that is reused for every write, so the server's own memory stays at a few MiB.

HTTP/1.1 keep-alive, a thread per connection (gateways keep a few pooled connections).
"""

import argparse
import json
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHUNK = b"x" * (1024 * 1024)


def _is_probe(path: str) -> bool:
    route, _, query = path.partition("?")
    return route == "/health" or "probe" in query


class BigBodyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bench-bigbody"
    body_bytes = 0

    def do_GET(self) -> None:
        if _is_probe(self.path):
            self._small({"status": "ok", "instance": "bigbody"})
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(self.body_bytes))
        self.end_headers()
        view = memoryview(CHUNK)
        left = self.body_bytes
        try:
            while left > 0:
                n = min(left, len(CHUNK))
                self.wfile.write(view[:n])
                left -= n
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the gateway gave up on this response

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(self.body_bytes))
        self.end_headers()

    def _small(self, payload: dict[str, str]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would only add noise to the bench's log


class BigBodyServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Gateways open their pools at once; the default backlog (5) could refuse some of them.
    request_queue_size = 128

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().server_bind()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.bigbody", description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--body-bytes", type=int, required=True)
    a = p.parse_args(argv)
    handler = type("Handler", (BigBodyHandler,), {"body_bytes": a.body_bytes})
    with BigBodyServer(("127.0.0.1", a.port), handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
