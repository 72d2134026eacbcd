"""Checks a running deployment from the outside, the way a user would, through its published port.

    python .ci/check_deployment.py http://127.0.0.1:8000 serving
    python .ci/check_deployment.py http://127.0.0.1:8080 all-down
    HEALTH_INTERVAL=7 python .ci/check_deployment.py http://127.0.0.1:8000 settings

`serving`: /health, /status and /data answer per docs/contract.md, and /data rotates round-robin
over the three storage services. `all-down`: with every storage service stopped, /data answers
503 with a JSON `detail` and a `Retry-After` header. `settings`: every gateway setting set in this
process's environment is what the deployed gateway's /status says is in effect.
Exits 1 with one line per failed check.
Standard library only, so it runs before any virtualenv exists.
"""

import json
import os
import sys
import urllib.error
import urllib.request
from collections import Counter
from typing import Any

INSTANCES = {"storage1", "storage2", "storage3"}
TIMEOUT_SECONDS = 15.0


def get(url: str) -> tuple[int, dict[str, str], Any]:
    """GET `url`: status, headers (lower-case names), JSON body (None when not JSON)."""
    try:
        # The URL is CI's own http://127.0.0.1:PORT/..., never a file: or custom scheme.
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # nosec B310
            status, headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, headers, raw = error.code, error.headers, error.read()
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    return status, {k.lower(): v for k, v in headers.items()}, body


def check_serving(base: str) -> list[str]:
    problems = []
    status, _, body = get(f"{base}/health")
    if status != 200 or not isinstance(body, dict) or body.get("status") != "ok":
        problems.append(f"/health: {status} {body!r}")

    status, _, body = get(f"{base}/status")
    services = body.get("services") if isinstance(body, dict) else None
    if status != 200 or not isinstance(services, list):
        problems.append(f"/status: {status} {body!r}")
    elif (body.get("available"), body.get("total"), len(services)) != (3, 3, 3):
        problems.append(f"/status: expected 3 of 3 available, got {body!r}")
    elif [s.get("url") for s in services] != [f"http://{name}:8000" for name in sorted(INSTANCES)]:
        problems.append(f"/status: services not in STORAGE_SERVICES order: {services!r}")

    served: list[str] = []
    for _ in range(6):
        status, headers, body = get(f"{base}/data")
        if status != 200 or not isinstance(body, dict) or "x-request-id" not in headers:
            problems.append(f"/data: {status} {headers!r} {body!r}")
            return problems
        served.append(str(body.get("instance")))
    if Counter(served) != Counter({name: 2 for name in INSTANCES}):
        problems.append(f"/data: not round-robin over {sorted(INSTANCES)}: {served}")
    return problems


def check_all_down(base: str) -> list[str]:
    problems = []
    for _ in range(2):  # the first request may still try (and time out on) every backend
        status, headers, body = get(f"{base}/data")
        if status != 503:
            problems.append(f"/data: expected 503, got {status} {body!r}")
        if not headers.get("content-type", "").startswith("application/json"):
            problems.append(f"/data: 503 without a JSON content type: {headers!r}")
        if not isinstance(body, dict) or not isinstance(body.get("detail"), str):
            problems.append(f"/data: 503 body without a 'detail' string: {body!r}")
        if not headers.get("retry-after", "").isdigit():
            problems.append(f"/data: 503 without a Retry-After header: {headers!r}")
    status, _, body = get(f"{base}/status")
    if status != 200 or not isinstance(body, dict) or body.get("available") != 0:
        problems.append(f"/status: expected 200 with 0 available, got {status} {body!r}")
    return problems


def check_settings(base: str) -> list[str]:
    status, _, body = get(f"{base}/status")
    in_effect = body.get("settings") if isinstance(body, dict) else None
    if status != 200 or not isinstance(in_effect, dict):
        return [f"/status: no settings in {status} {body!r}"]
    wanted = {name: os.environ[name] for name in in_effect if name in os.environ}
    if not wanted:
        return ["no gateway setting is set in the environment: nothing to check"]
    return [
        f"{name}={value} was set, the gateway runs with {in_effect[name]!r}"
        for name, value in wanted.items()
        if not _same(in_effect[name], value)
    ]


def _same(actual: Any, text: str) -> bool:
    """Whether the value /status shows is the one `text` sets (pydantic parsed it)."""
    if isinstance(actual, bool):
        words = ("1", "true", "yes", "on") if actual else ("0", "false", "no", "off")
        return text.lower() in words
    if isinstance(actual, int | float):
        try:
            return float(text) == actual
        except ValueError:
            return False
    return str(actual) == text


def main(argv: list[str]) -> int:
    checks = {"serving": check_serving, "all-down": check_all_down, "settings": check_settings}
    if len(argv) != 3 or argv[2] not in checks:
        print(f"usage: {argv[0]} BASE_URL {{{','.join(checks)}}}", file=sys.stderr)
        return 2
    base, mode = argv[1].rstrip("/"), argv[2]
    try:
        problems = checks[mode](base)
    except (OSError, urllib.error.URLError) as error:
        problems = [f"{base} unreachable: {error}"]
    for problem in problems:
        print(f"check_deployment {base} {mode}: {problem}", file=sys.stderr)
    if not problems:
        print(f"check_deployment {base} {mode}: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
