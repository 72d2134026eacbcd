"""Real HTTP servers that no one here wrote, started as upstreams on free loopback ports.

Each serves `/data` in its own way: python's http.server (HTTP/1.0, one connection per
response), nginx serving a file from disk (sendfile, keep-alive), hypercorn and gunicorn
serving a tiny app (tests/hostile/apps.py), and Node's http server (tests/hostile/node_upstream.js,
which also sends a real 103 Early Hints from `res.writeEarlyHints()`).
"""

import shutil
import subprocess
import sys
from pathlib import Path

from bench.nginx_config import host_conf
from bench.processes import Child, Children, free_port, http_get, wait_until
from bench.targets import nginx_command
from tests.hostile.upstream import pattern

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
START_TIMEOUT_S = 30.0

_NGINX_FILES = """\
    access_log off;
    sendfile on;
    keepalive_timeout 30s;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        default_type application/octet-stream;
    }}"""


def write_data_file(directory: Path, size: int) -> Path:
    """`directory/data`: `size` bytes of the suite's pattern, written a block at a time."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "data"
    with path.open("wb") as out:
        for block in pattern(size):
            out.write(block)
    return path


def _serving(name: str, port: int, child: Child) -> int:
    wait_until(
        f"{name} on {port}", lambda: http_get(port, "/data")[0] == 200, START_TIMEOUT_S, child
    )
    return port


def http_server(kids: Children, directory: Path) -> int:
    """`python -m http.server`: HTTP/1.0, a Content-Length, then the connection closes."""
    port = free_port()
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    child = kids.start("http.server", [*command, "--directory", str(directory)])
    return _serving("http.server", port, child)


def nginx_files(kids: Children, directory: Path, prefix: Path) -> int:
    """nginx serving `directory` as static files (keep-alive, sendfile)."""
    port = free_port()
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    body = _NGINX_FILES.format(port=port, root=directory)
    conf.write_text(host_conf("nginx serving files (tests/hostile)", body, 256))
    command = nginx_command(prefix, conf)
    check = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        raise RuntimeError(f"nginx rejects {conf}: {check.stderr.strip()}")
    child = kids.start("nginx-files", command)
    return _serving("nginx (files)", port, child)


def hypercorn(kids: Children) -> int:
    port = free_port()
    command = [sys.executable, "-m", "hypercorn", "tests.hostile.apps:asgi_app"]
    child = kids.start("hypercorn", [*command, "--bind", f"127.0.0.1:{port}"], cwd=ROOT)
    return _serving("hypercorn", port, child)


def gunicorn(kids: Children) -> int:
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}"]
    child = kids.start("gunicorn", [*command, "tests.hostile.apps:wsgi_app"], cwd=ROOT)
    return _serving("gunicorn", port, child)


def node_missing() -> str | None:
    return None if shutil.which("node") else "node is not installed (apt-get install nodejs)"


def node(kids: Children) -> int:
    port = free_port()
    child = kids.start("node", ["node", str(HERE / "node_upstream.js"), str(port)])
    return _serving("node", port, child)
