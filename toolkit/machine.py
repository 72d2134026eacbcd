"""The machine a result was measured on, and the versions of what ran: stated with every result."""

import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

NOT_AVAILABLE = "not available"


@dataclass(frozen=True, slots=True)
class Machine:
    nproc: int
    cpu_model: str
    memory: str  # "7.8 GiB"
    os: str  # "Linux 6.1.0-18-amd64 (x86_64)"
    kernel: str
    python: str

    @property
    def summary(self) -> str:
        return f"{self.cpu_model}, {self.nproc} cores, {self.memory} RAM"


def _proc_field(path: str, prefix: str) -> str | None:
    """The rest of the first line of a /proc file that starts with `prefix`."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
    except OSError:
        pass
    return None


def _cpu_model() -> str:
    model = _proc_field("/proc/cpuinfo", "model name")
    return model.lstrip(":").strip() if model else platform.processor() or "unknown"


def _memory() -> str:
    total = _proc_field("/proc/meminfo", "MemTotal:")  # "8043156 kB"
    return f"{int(total.split()[0]) / 1024 / 1024:.1f} GiB" if total else "unknown"


def describe_machine() -> Machine:
    return Machine(
        nproc=os.cpu_count() or 0,
        cpu_model=_cpu_model(),
        memory=_memory(),
        os=f"{platform.system()} {platform.release()} ({platform.machine()})",
        kernel=platform.release(),
        python=sys.version.split()[0],
    )


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _run(command: tuple[str, ...]) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else NOT_AVAILABLE


def tool_version(*command: str) -> str:
    """The first line a version flag prints, whatever the exit status (`wrk -v` exits 1;
    `nginx -v` prints to stderr)."""
    done = _run(command)
    return NOT_AVAILABLE if done is None else _first_line(done.stdout + done.stderr)


def command_output(*command: str) -> str:
    """The first line of a command that succeeds."""
    done = _run(command)
    if done is None or done.returncode != 0:
        return NOT_AVAILABLE
    return _first_line(done.stdout or done.stderr)


def compose_version() -> str:
    # Users have compose v2 (`docker compose`); some machines only v1 (`docker-compose`).
    for command in (("docker", "compose", "version"), ("docker-compose", "version", "--short")):
        found = command_output(*command)
        if found != NOT_AVAILABLE:
            return found
    return NOT_AVAILABLE
