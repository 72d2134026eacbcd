"""The machine and the versions a result was measured with."""

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path


def _first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return "not available"
    # nginx -v and wrk -v print to stderr.
    text = (done.stdout + done.stderr).strip()
    return text.splitlines()[0] if text else "not available"


def _package(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def describe_machine() -> dict[str, str | int]:
    return {
        "nproc": os.cpu_count() or 0,
        "cpu_model": cpu_model(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "uvicorn": _package("uvicorn"),
        "uvloop": _package("uvloop"),
        "httptools": _package("httptools"),
        "fastapi": _package("fastapi"),
        "httpx": _package("httpx"),
        "aiohttp": _package("aiohttp"),
        "pyreqwest": _package("pyreqwest"),
        "nginx": _first_line(["nginx", "-v"]),
        "haproxy": _first_line(["haproxy", "-v"]),
        "wrk": _first_line(["wrk", "-v"]),
    }
