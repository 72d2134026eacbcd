"""Make sure the images under test exist, building them the project's way (`make images`)."""

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

import docker
from docker.errors import ImageNotFound

REPO_ROOT = Path(__file__).resolve().parents[2]

# `make images` builds offline: it falls back to the project's local base image when no
# registry can be reached. CONTRACT_SKIP_BUILD=1 uses the images as they are (faster reruns).
BUILD_COMMAND = ("make", "images")


class ImageError(RuntimeError):
    """The images could not be built or are missing; the message is one actionable line."""


def build_images(log_path: Path) -> None:
    """Run `make images` from the repository root, writing its output to `log_path`."""
    if os.environ.get("CONTRACT_SKIP_BUILD") == "1":
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        try:
            result = subprocess.run(
                BUILD_COMMAND, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, check=False
            )
        except FileNotFoundError as error:
            raise ImageError(f"cannot run {' '.join(BUILD_COMMAND)}: {error}") from None
    if result.returncode != 0:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-15:]
        raise ImageError(
            f"`{' '.join(BUILD_COMMAND)}` failed with exit code {result.returncode} "
            f"(full log: {log_path}):\n" + "\n".join(tail)
        )


def require_images(engine: docker.DockerClient, names: Iterable[str]) -> None:
    missing = []
    for name in names:
        try:
            engine.images.get(name)
        except ImageNotFound:
            missing.append(name)
    if missing:
        raise ImageError(
            f"image(s) not found: {', '.join(missing)}; build them with `make images` "
            "(or unset CONTRACT_SKIP_BUILD)"
        )
