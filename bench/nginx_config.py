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


def main_directives(user: str | None) -> str:
    """What the project's nginx.conf leaves to its caller (`-g`): one worker, foreground."""
    return "daemon off; worker_processes 1;" + (f" user {user};" if user else "")
