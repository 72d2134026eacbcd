"""nginx for the bench: the project's own config, rendered by nginx/render-config.sh.

The bench changes one thing after rendering: the listen address becomes 127.0.0.1 (the
template listens on every interface, as a container does). Everything else (upstream
keep-alive, max_fails/fail_timeout, retries, logs) is the project's nginx as deployed.
"""

import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

_LISTEN = re.compile(r"^(\s*listen\s+)(\d+)(\b[^;]*;)", re.MULTILINE)


class NginxTemplateError(ValueError):
    """The project's nginx config cannot be rendered for local processes."""


def bind_loopback(conf_text: str, port: int) -> str:
    """`listen PORT ...;` becomes `listen 127.0.0.1:PORT ...;`; refuses a config without it."""
    rewritten, count = _LISTEN.subn(
        lambda m: (
            f"{m.group(1)}127.0.0.1:{m.group(2)}{m.group(3)}"
            if int(m.group(2)) == port
            else m.group(0)
        ),
        conf_text,
    )
    if count == 0 or f"127.0.0.1:{port}" not in rewritten:
        raise NginxTemplateError(f"the rendered nginx config does not `listen {port}`")
    return rewritten


def render(nginx_dir: Path, out_dir: Path, env: Mapping[str, str]) -> Path:
    """Run render-config.sh into `out_dir` (also nginx's prefix); the nginx.conf path."""
    script = nginx_dir / "render-config.sh"
    if not script.exists():
        raise NginxTemplateError(f"{script} not found: the bench renders nginx with it")
    done = subprocess.run(
        ["sh", str(script), str(out_dir)],
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise NginxTemplateError(f"{script} failed: {done.stderr.strip()}")
    port = int(env["NGINX_LISTEN_PORT"])
    for conf in (out_dir / "conf.d").glob("*.conf"):
        text = conf.read_text()
        if _LISTEN.search(text):
            conf.write_text(bind_loopback(text, port))
    return out_dir / "nginx.conf"


def main_directives(user: str | None, workers: int = 1) -> str:
    """What the project's nginx.conf leaves to its caller (`-g`): `workers` worker processes
    (one by default), in the foreground."""
    return f"daemon off; worker_processes {workers};" + (f" user {user};" if user else "")


def _quoted(text: str) -> str:
    """An nginx single-quoted string; refuses what would need escaping (or expand as `$var`)."""
    if any(c in text for c in "'\\$"):
        raise NginxTemplateError(f"cannot quote {text[:40]!r} for nginx")
    return f"'{text}'"


def render_static(upstreams: list[tuple[int, bytes, bytes]]) -> str:
    """A whole nginx.conf that answers like the storage services, for no more than a static
    reply costs: one `server` per (port, /data body, /health body), on 127.0.0.1.

    Every other path gets the /data body. Keep-alive has no request limit and outlasts the
    gateways' idle pools, like the storage services' uvicorn (`--timeout-keep-alive 75`), so
    no gateway pays for reconnecting that the storage services would not make it pay.
    """
    servers = "".join(
        f"""
    server {{
        listen 127.0.0.1:{port};
        location = /health {{ return 200 {_quoted(health.decode())}; }}
        location / {{ return 200 {_quoted(data.decode())}; }}
    }}"""
        for port, data, health in upstreams
    )
    body = f"""    access_log off;
    server_tokens off;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 100000000;
    default_type application/json;
{servers}"""
    return host_conf("the cores phase's upstream (bench/cores.py)", body, 4096)


def host_conf(what: str, http_body: str, worker_connections: int) -> str:
    """A whole nginx.conf for an nginx process of the tools' own (`nginx_command`): everything
    it writes stays under its prefix, and `http_body` goes inside `http { }`."""
    return f"""# {what}, rendered by bench/nginx_config.py.
pid nginx.pid;
error_log stderr warn;
events {{
    worker_connections {worker_connections};
}}
http {{
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;
{http_body}
}}
"""
