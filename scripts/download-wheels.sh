#!/usr/bin/env bash
# Downloads each service's pinned requirements as wheels on the host, into
# .cache/wheels/<service>/, so `docker build` installs them with
# `pip install --no-index` and never needs PyPI from inside a container.
#
# The wheels are picked for the images' platform (CPython 3.11, glibc Linux,
# the Docker engine's CPU architecture), not the host's, so this also works on
# a Mac building linux/arm64 images. A stamp file skips the download while the
# requirements are unchanged (FORCE=1 downloads again).
#
#   scripts/download-wheels.sh [service_dir ...]   (default: storage_service gateway_service)
set -euo pipefail

repo_root=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo_root"
python=${PYTHON:-python3}
wheel_dir=${WHEEL_DIR:-.cache/wheels}
services=("$@")
[[ ${#services[@]} -gt 0 ]] || services=(storage_service gateway_service)

die() { echo "download-wheels: $*" >&2; exit 1; }

arch=${WHEEL_ARCH:-}
if [[ -z $arch ]]; then
  case $(docker version --format '{{.Server.Arch}}' 2>/dev/null || uname -m) in
    amd64 | x86_64) arch=x86_64 ;;
    arm64 | aarch64) arch=aarch64 ;;
    *) die "unknown CPU architecture; set WHEEL_ARCH=x86_64 or aarch64" ;;
  esac
fi
# Debian bookworm (both bases) has glibc 2.36, so every manylinux tag up to
# 2.36 fits; pip wants them spelled out when --platform is given.
platform=manylinux_2_36_${arch}
platform_args=()
for minor in $(seq 36 -1 5); do
  platform_args+=(--platform "manylinux_2_${minor}_${arch}")
done
platform_args+=(--platform "manylinux2014_${arch}")

for service in "${services[@]}"; do
  requirements=${service}/requirements.txt
  [[ -f $requirements ]] || die "no ${requirements}"
  target=${wheel_dir}/${service}
  stamp=${target}/.stamp
  want=$(cat "$requirements" - <<<"${platform} cp311" | sha256sum | cut -d' ' -f1)
  if [[ ${FORCE:-0} == 0 && -f $stamp && $(cat "$stamp") == "$want" ]]; then
    echo "download-wheels: ${target} is up to date"
    continue
  fi
  rm -rf "$target"
  mkdir -p "$target"
  echo "download-wheels: ${requirements} -> ${target} (${platform}, cp311)"
  "$python" -m pip download --disable-pip-version-check \
    --only-binary=:all: --implementation cp --python-version 3.11 \
    "${platform_args[@]}" -r "$requirements" -d "$target"
  echo "$want" >"$stamp"
done
