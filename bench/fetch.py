"""The clients of the memory phase: N concurrent GETs of one URL, bodies counted and discarded.

    python -m bench.fetch --port 8080 --path /data --clients 5 --deadline-s 60 --out result.json

Each client is a thread with its own connection (http.client, `Connection: close`); it reads the
body into one reused buffer and counts the bytes. Every client stops at the deadline at the
latest, so the run is bounded; what it got by then is reported. The result file is a JSON list,
one object per client: status, content_length (as announced), bytes (body bytes received),
seconds, error (None when the body ended normally).
"""

import argparse
import http.client
import json
import threading
import time
from pathlib import Path
from typing import Any

BUFFER_BYTES = 256 * 1024
# The longest a single socket operation may block; the deadline is checked between reads.
SOCKET_TIMEOUT_S = 10.0


def fetch(port: int, path: str, deadline: float, start: threading.Barrier) -> dict[str, Any]:
    result: dict[str, Any] = {
        "status": None, "content_length": None, "bytes": 0, "seconds": 0.0, "error": None,
    }  # fmt: skip
    buffer = bytearray(BUFFER_BYTES)
    start.wait()
    began = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=SOCKET_TIMEOUT_S)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        result["status"] = response.status
        length = response.getheader("content-length")
        result["content_length"] = int(length) if length is not None else None
        while True:
            if time.monotonic() > deadline:
                result["error"] = "deadline reached"
                break
            n = response.readinto(buffer)
            if not n:
                break
            result["bytes"] += n
    except (OSError, http.client.HTTPException, ValueError) as error:
        result["error"] = f"{type(error).__name__}: {error}"
    finally:
        conn.close()
        result["seconds"] = round(time.monotonic() - began, 3)
    return result


def fetch_all(port: int, path: str, clients: int, deadline_s: float) -> list[dict[str, Any]]:
    """`clients` concurrent fetches, started together; each result in client order."""
    deadline = time.monotonic() + deadline_s
    start = threading.Barrier(clients)
    results: list[dict[str, Any]] = [
        {"status": None, "content_length": None, "bytes": 0, "seconds": deadline_s,
         "error": "client did not finish"}
        for _ in range(clients)
    ]  # fmt: skip

    def run(index: int) -> None:
        results[index] = fetch(port, path, deadline, start)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        # The socket timeout bounds a read past the deadline.
        thread.join(max(0.0, deadline - time.monotonic()) + SOCKET_TIMEOUT_S + 5)
    return results


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.fetch", description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/data")
    p.add_argument("--clients", type=int, required=True)
    p.add_argument("--deadline-s", type=float, required=True)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    a.out.write_text(json.dumps(fetch_all(a.port, a.path, a.clients, a.deadline_s)) + "\n")


if __name__ == "__main__":
    main()
