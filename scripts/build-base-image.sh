#!/usr/bin/env bash
# Build the project's local base image from Debian packages, for Docker engines
# that cannot pull the official python/nginx images (no registry reachable).
#
#   scripts/build-base-image.sh            build unless the image already exists
#   FORCE=1 scripts/build-base-image.sh    rebuild the image (reuses the cached rootfs)
#   FORCE=2 scripts/build-base-image.sh    also re-run debootstrap
#
# Settings (environment): BASE_IMAGE_LOCAL (image name), DEBIAN_MIRROR, CACHE_DIR.
# Needs root (debootstrap + chroot) and docker.
set -euo pipefail

readonly SUITE=bookworm
# Everything both Dockerfiles expect from their base: python with venv (for the
# two FastAPI services), nginx with the njs module, envsubst for the nginx
# templates, curl for the nginx healthcheck.
readonly PACKAGES=(
  ca-certificates
  curl
  gettext-base
  libnginx-mod-http-js
  nginx
  python3
  python3-venv
)

repo_root=$(cd "$(dirname "$0")/.." && pwd)
image=${BASE_IMAGE_LOCAL:-service-assembly/base:${SUITE}}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache_dir=${CACHE_DIR:-${repo_root}/.cache/base}
force=${FORCE:-0}

die() { echo "build-base-image: $*" >&2; exit 1; }
log() { echo "build-base-image: $*" >&2; }

# debootstrap and apt print hundreds of lines: they go to build_log, and only a failure shows
# its last lines here.
build_log=${cache_dir}/build.log
quietly() {
  local status=0
  "$@" </dev/null >>"$build_log" 2>&1 || status=$?
  if [[ $status != 0 ]]; then
    tail -n 20 "$build_log" >&2
    die "$1 failed with status ${status} (above: the end of ${build_log})"
  fi
}

command -v docker >/dev/null || die "docker is not installed"
docker info >/dev/null 2>&1 || die "cannot talk to the Docker daemon (is it running, may this user use it?)"

if [[ $force == 0 ]] && docker image inspect "$image" >/dev/null 2>&1; then
  log "$image already exists (FORCE=1 rebuilds it)"
  exit 0
fi

# The tarball name carries a hash of the package list, so changing the list
# invalidates the cache instead of silently reusing an old rootfs.
pkg_hash=$(printf '%s\n' "$SUITE" "${PACKAGES[@]}" | sha256sum | cut -c1-12)
tarball=${cache_dir}/rootfs-${SUITE}-${pkg_hash}.tar.gz

build_rootfs() {
  [[ $(id -u) == 0 ]] || die "debootstrap needs root; run as root or reuse a cached ${tarball}"
  "${repo_root}/scripts/host-packages.sh" base-image

  mkdir -p "$cache_dir"
  rootfs=$(mktemp -d "${cache_dir}/rootfs.XXXXXX")
  # Remove the tree whatever happens; a finished one has been archived by then.
  trap 'rm -rf --one-file-system "$rootfs"' EXIT
  # mktemp makes it 0700, and the archive's "." becomes the image's "/".
  chmod 0755 "$rootfs"

  log "debootstrap ${SUITE} (minbase) into ${rootfs} (takes a few minutes; log ${build_log})"
  : >"$build_log"
  quietly debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror"

  # Services must not start inside the chroot while packages are configured.
  printf '#!/bin/sh\nexit 101\n' >"${rootfs}/usr/sbin/policy-rc.d"
  chmod 0755 "${rootfs}/usr/sbin/policy-rc.d"
  # debootstrap only knows the main suite; security updates matter for a base image.
  cat >"${rootfs}/etc/apt/sources.list" <<EOF
deb ${mirror} ${SUITE} main
deb ${mirror} ${SUITE}-updates main
deb http://deb.debian.org/debian-security ${SUITE}-security main
EOF
  # Keep docs, man pages and translations out of this and any later apt-get install.
  cat >"${rootfs}/etc/dpkg/dpkg.cfg.d/01-slim" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
EOF

  log "installing ${PACKAGES[*]}"
  quietly chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive sh -euc '
    apt-get update -qq
    apt-get -qq -y upgrade
    apt-get -qq -y install --no-install-recommends "$@"
    apt-get clean
  ' sh "${PACKAGES[@]}"

  rm -f "${rootfs}/usr/sbin/policy-rc.d"
  # The default site listens on port 80 as root; our images bring their own config.
  rm -f "${rootfs}/etc/nginx/sites-enabled/default"
  rm -rf "${rootfs}"/var/lib/apt/lists/* "${rootfs}"/var/cache/apt/*.bin \
    "${rootfs}"/var/cache/debconf/*-old "${rootfs}"/var/log/*.log \
    "${rootfs}"/var/log/apt/* "${rootfs}"/usr/share/man/* \
    "${rootfs}"/usr/share/info/* "${rootfs}"/tmp/* "${rootfs}"/root/.cache
  # Licences stay (copyright files); the rest of the docs go.
  find "${rootfs}/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "${rootfs}/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  # The container gets its own resolv.conf and hostname from Docker.
  : >"${rootfs}/etc/resolv.conf"
  rm -f "${rootfs}/etc/hostname"

  log "archiving the rootfs to ${tarball}"
  tar --numeric-owner --xattrs -C "$rootfs" -czf "${tarball}.part" .
  mv "${tarball}.part" "$tarball"
  # Older rootfs archives (other package lists) are dead weight now.
  find "$cache_dir" -maxdepth 1 -name "rootfs-${SUITE}-*.tar.gz" ! -path "$tarball" -delete
}

if [[ $force == 2 || ! -s $tarball ]]; then
  build_rootfs
else
  log "reusing cached rootfs ${tarball}"
fi

log "importing ${tarball} as ${image}"
docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'LABEL com.service-assembly.project=service-assembly' \
  --change 'LABEL com.service-assembly.base=true' \
  --change 'CMD ["/bin/bash"]' \
  --message "debootstrap ${SUITE} minbase + ${PACKAGES[*]}" \
  "$tarball" "$image" >/dev/null
log "built $image ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
