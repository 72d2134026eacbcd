#!/usr/bin/env bash
# Builds the project images (service-assembly/{storage,gateway,nginx,haproxy,caddy}:dev)
# from the repository root, choosing each base image once:
#
#   1. PYTHON_BASE_IMAGE / NGINX_BASE_IMAGE (or BASE_IMAGE for both) when given;
#   2. else the choice remembered in .cache/base-images.env;
#   3. else the official image (python:3.11-slim-bookworm, nginx:stable) when it is
#      present or `docker pull` gets it, otherwise the project's local Debian base
#      (scripts/build-base-image.sh builds it if needed). The choice is remembered;
#      delete .cache/base-images.env to choose again.
#
# Needs the wheels in .cache/wheels (scripts/download-wheels.sh). Each image carries the OCI
# labels version (scripts/version.sh), revision (git HEAD), created (the commit's time, so a
# rebuild of the same commit is the same image) and source (IMAGE_SOURCE, else git's origin URL).
# Each build prints its steps as they start; the whole output goes to .cache/build-images.log.
set -euo pipefail

repo_root=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo_root"

readonly OFFICIAL_PYTHON=python:3.11-slim-bookworm
readonly OFFICIAL_NGINX=nginx:stable
readonly LOCAL_BASE=${BASE_IMAGE_LOCAL:-service-assembly/base:bookworm}
readonly CHOICE_FILE=.cache/base-images.env

log() { echo "build-images: $*" >&2; }
die() { echo "build-images: $*" >&2; exit 1; }

python_base=${PYTHON_BASE_IMAGE:-${BASE_IMAGE:-}}
nginx_base=${NGINX_BASE_IMAGE:-${BASE_IMAGE:-}}

if [[ (-z $python_base || -z $nginx_base) && -f $CHOICE_FILE ]]; then
  # shellcheck disable=SC1090 # a file this script writes itself, below
  remembered_python=$(. "$CHOICE_FILE" && echo "${PYTHON_BASE_IMAGE:-}")
  # shellcheck disable=SC1090
  remembered_nginx=$(. "$CHOICE_FILE" && echo "${NGINX_BASE_IMAGE:-}")
  python_base=${python_base:-$remembered_python}
  nginx_base=${nginx_base:-$remembered_nginx}
  log "using the remembered base images from ${CHOICE_FILE}"
fi

# Prints the official image when it is here or can be pulled, else the local base.
choose() {
  local official=$1
  if docker image inspect "$official" >/dev/null 2>&1; then
    echo "$official"
  elif docker pull -q "$official" >/dev/null 2>&1; then
    log "pulled $official"
    echo "$official"
  else
    log "cannot pull $official; falling back to the local base $LOCAL_BASE"
    echo "$LOCAL_BASE"
  fi
}
[[ -n $python_base ]] || python_base=$(choose "$OFFICIAL_PYTHON")
[[ -n $nginx_base ]] || nginx_base=$(choose "$OFFICIAL_NGINX")

mkdir -p .cache
printf 'PYTHON_BASE_IMAGE=%s\nNGINX_BASE_IMAGE=%s\n' "$python_base" "$nginx_base" >"$CHOICE_FILE"

# HAProxy and Caddy install Debian bookworm's packages on the local base, whichever base the
# others use (no official image of theirs is tried).
"$repo_root/scripts/build-base-image.sh"

version=$("$repo_root/scripts/version.sh")
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
created=$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
source_url=${IMAGE_SOURCE:-$(git remote get-url origin 2>/dev/null || true)}
label_args=(--build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "CREATED=$created")
# Never credentials from the URL in a label; a local path or ssh remote says nothing to a user.
source_url=${source_url/#https:\/\/*@/https:\/\/}
[[ $source_url != https://* ]] || label_args+=(--build-arg "SOURCE=${source_url%.git}")

build_log=.cache/build-images.log
: >"$build_log"
if ! docker buildx version >/dev/null 2>&1; then
  # Without buildx Docker falls back to its classic builder and prints a deprecation notice for
  # each build; it is only in the log, once per image, as the builder works the same.
  log "no docker buildx here: the classic builder builds (its deprecation notice is in ${build_log})"
fi

# The step lines of either builder, as each starts: the classic builder's "Step 3/14 : RUN ...",
# BuildKit's "#7 [build 3/5] RUN ...".
show_steps() { awk '/^Step [0-9]+\/[0-9]+ : / || /^#[0-9]+ \[/ { print "  " substr($0, 1, 110); fflush() }'; }

build() {
  local tag=$1 dockerfile=$2 base=$3
  log "$tag ${version} (from $base)"
  if ! docker build --build-arg "BASE_IMAGE=$base" "${label_args[@]}" \
    --label com.service-assembly.project=service-assembly \
    -f "$dockerfile" -t "$tag" . 2>&1 | tee -a "$build_log" | show_steps; then
    tail -n 25 "$build_log" >&2
    die "building $tag failed (above: the end of ${build_log})"
  fi
}
build service-assembly/storage:dev storage_service/Dockerfile "$python_base"
build service-assembly/gateway:dev gateway_service/Dockerfile "$python_base"
build service-assembly/nginx:dev nginx/Dockerfile "$nginx_base"
build service-assembly/haproxy:dev haproxy/Dockerfile "$LOCAL_BASE"
build service-assembly/caddy:dev caddy/Dockerfile "$LOCAL_BASE"
# Untagged build stages stay behind on purpose: they are the layer cache that keeps
# rebuilds quick. `make clean` removes them (they carry the project label).
log "done: service-assembly/{storage,gateway,nginx,haproxy,caddy}:dev"
