#!/usr/bin/env bash
# Builds project images (service-assembly/NAME:dev) from the repository root: all five, or those
# named (storage, gateway, nginx, haproxy, caddy) or run by the compose and stack files given.
#
#   scripts/build-images.sh                          all five
#   scripts/build-images.sh docker-compose.yml       storage and gateway (what `make deploy` runs)
#
# Each base image is chosen once:
#   1. PYTHON_BASE_IMAGE / NGINX_BASE_IMAGE (or BASE_IMAGE for both) when given;
#   2. else the choice remembered in .cache/base-images.env;
#   3. else the official image (python:3.11-slim-bookworm, nginx:stable) when it is
#      present or `docker pull` gets it, otherwise the project's local Debian base
#      (scripts/build-base-image.sh builds it if needed). The choice is remembered;
#      delete .cache/base-images.env to choose again.
#
# The Python images' wheels are downloaded first (scripts/download-wheels.sh, with PYTHON's pip).
# BUILD_JOBS builds run at once (default: the CPU count; on 2 cores two builds at once take
# two thirds of the time of one after the other, README.md). Docker's layer cache makes an
# unchanged image a matter of seconds. Each image carries the OCI labels version
# (scripts/version.sh), revision (git HEAD), created (the commit's time, so a rebuild of the
# same commit is the same image) and source (IMAGE_SOURCE, else git's origin URL).
# Progress is one line per step; each build's output is in .cache/logs/image-NAME.log.
# IMAGE_TAG (default dev) tags the images service-assembly/NAME:IMAGE_TAG instead, so that a second
# checkout can build its own beside :dev (the contract suite then takes CONTRACT_<NAME>_IMAGE).
set -euo pipefail

repo_root=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo_root"

readonly OFFICIAL_PYTHON=python:3.11-slim-bookworm
readonly OFFICIAL_NGINX=nginx:stable
readonly LOCAL_BASE=${BASE_IMAGE_LOCAL:-service-assembly/base:bookworm}
readonly CHOICE_FILE=.cache/base-images.env
log_dir=${LOG_DIR:-${repo_root}/.cache/logs}
image_tag=${IMAGE_TAG:-dev}
[[ $image_tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || {
  echo "build-images: IMAGE_TAG '${image_tag}' is not a valid image tag" >&2
  exit 1
}

# Each image's Dockerfile and the base it builds on: python, nginx, or the local base (HAProxy and
# Caddy install Debian bookworm's packages on it, whichever base the others use).
readonly ALL_IMAGES=(storage gateway nginx haproxy caddy)
declare -A dockerfile=([storage]=storage_service/Dockerfile [gateway]=gateway_service/Dockerfile
  [nginx]=nginx/Dockerfile [haproxy]=haproxy/Dockerfile [caddy]=caddy/Dockerfile)
declare -A base_kind=([storage]=python [gateway]=python [nginx]=nginx [haproxy]=local [caddy]=local)

log() { echo "build-images: $*" >&2; }
die() { echo "build-images: $*" >&2; exit 1; }

selected=()
for arg in "$@"; do
  if [[ -f $arg ]]; then
    mapfile -t -O "${#selected[@]}" selected < <("$repo_root/scripts/images-of.sh" "$arg")
  elif [[ -n ${dockerfile[$arg]:-} ]]; then
    selected+=("$arg")
  else
    die "'${arg}' is neither an image (${ALL_IMAGES[*]}) nor a compose or stack file"
  fi
done
[[ $# -gt 0 ]] || selected=("${ALL_IMAGES[@]}")
mapfile -t selected < <(printf '%s\n' "${selected[@]}" | awk '!seen[$0]++')
declare -A needs=()
for name in "${selected[@]}"; do needs[${base_kind[$name]}]=1; done

python_base=${PYTHON_BASE_IMAGE:-${BASE_IMAGE:-}}
nginx_base=${NGINX_BASE_IMAGE:-${BASE_IMAGE:-}}
if [[ (-z $python_base || -z $nginx_base) && -f $CHOICE_FILE ]]; then
  # shellcheck disable=SC1090 # a file this script writes itself, below
  remembered_python=$(. "$CHOICE_FILE" && echo "${PYTHON_BASE_IMAGE:-}")
  # shellcheck disable=SC1090
  remembered_nginx=$(. "$CHOICE_FILE" && echo "${NGINX_BASE_IMAGE:-}")
  python_base=${python_base:-$remembered_python}
  nginx_base=${nginx_base:-$remembered_nginx}
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
    log "cannot pull $official; the local base $LOCAL_BASE stands in for it (.cache/base-images.env)"
    echo "$LOCAL_BASE"
  fi
}
# Only the bases of the images to build: a deployment of ours never pulls nginx.
[[ -n $python_base || -z ${needs[python]:-} ]] || python_base=$(choose "$OFFICIAL_PYTHON")
[[ -n $nginx_base || -z ${needs[nginx]:-} ]] || nginx_base=$(choose "$OFFICIAL_NGINX")
mkdir -p .cache
printf 'PYTHON_BASE_IMAGE=%s\nNGINX_BASE_IMAGE=%s\n' "$python_base" "$nginx_base" >"$CHOICE_FILE"
declare -A base=([python]=$python_base [nginx]=$nginx_base [local]=$LOCAL_BASE)

uses_local=false
for name in "${selected[@]}"; do
  [[ ${base[${base_kind[$name]}]} != "$LOCAL_BASE" ]] || uses_local=true
done
if $uses_local && ! docker image inspect "$LOCAL_BASE" >/dev/null 2>&1; then
  "$repo_root/scripts/step.sh" base-image "base image (debootstrap the first time)" \
    "$repo_root/scripts/build-base-image.sh"
fi

if [[ -n ${needs[python]:-} ]]; then
  services=()
  for name in "${selected[@]}"; do
    [[ ${base_kind[$name]} != python ]] || services+=("$(dirname "${dockerfile[$name]}")")
  done
  "$repo_root/scripts/step.sh" wheels "wheels for ${services[*]}" \
    "$repo_root/scripts/download-wheels.sh" "${services[@]}"
fi

version=$("$repo_root/scripts/version.sh")
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
created=$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
source_url=${IMAGE_SOURCE:-$(git remote get-url origin 2>/dev/null || true)}
label_args=(--build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "CREATED=$created")
# Never credentials from the URL in a label; a local path or ssh remote says nothing to a user.
source_url=${source_url/#https:\/\/*@/https:\/\/}
[[ $source_url != https://* ]] || label_args+=(--build-arg "SOURCE=${source_url%.git}")

# Without buildx Docker falls back to its classic builder and prints a deprecation notice for
# each build, into that build's log; the builder works the same.
jobs=${BUILD_JOBS:-$(nproc 2>/dev/null || echo 1)}
[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "BUILD_JOBS=${jobs}: expected a whole number of builds, 1 or more"
((jobs <= ${#selected[@]})) || jobs=${#selected[@]}
mkdir -p "$log_dir"
results=$(mktemp -d)
ticker=
# shellcheck disable=SC2317 # called by the trap
stop() {
  [[ -z $ticker ]] || kill "$ticker" 2>/dev/null || true
  rm -rf "$results"
}
trap stop EXIT

# Runs in the background; NAME.done gets the exit status and the seconds it took.
build() {
  local name=$1 status=0
  SECONDS=0
  # No --label: the classic builder would add a step to every build for it; each stage of each
  # Dockerfile carries the project label itself.
  docker build --build-arg "BASE_IMAGE=${base[${base_kind[$name]}]}" "${label_args[@]}" \
    -f "${dockerfile[$name]}" -t "service-assembly/${name}:${image_tag}" . \
    </dev/null >"${log_dir}/image-${name}.log" 2>&1 || status=$?
  echo "${status} ${SECONDS}" >"${results}/${name}.done"
}

# What the line says of an image: "storage 21 s" once built, "gateway 12 s..." while building.
said() {
  local name=$1 status took
  if [[ -f ${results}/${name}.done ]]; then
    read -r status took <"${results}/${name}.done"
    if [[ $status == 0 ]]; then echo "${name} ${took} s"; else echo "${name} FAILED after ${took} s"; fi
  elif [[ -f ${results}/${name}.start ]]; then
    echo "${name} $((SECONDS - $(<"${results}/${name}.start"))) s..."
  fi
}
line() {
  local name part text=
  for name in "${selected[@]}"; do
    part=$(said "$name")
    [[ -z $part ]] || text+="${text:+, }${part}"
  done
  printf '\r\033[K==> %s ... %s' "$title" "$text"
}

# All the builds share one line: each image with its seconds once built (on a terminal, those
# still building count up every second).
title="images ${selected[*]}"
((jobs == 1)) || title+=" (${jobs} at a time)"
SECONDS=0
if [[ -t 1 ]]; then
  printf '==> %s ...' "$title"
  (while sleep 1; do line; done) &
  ticker=$!
else
  printf '==> %s ...' "$title"
fi
queue=("${selected[@]}")
running=0
declare -A shown=()
while ((${#queue[@]} > 0 || running > 0)); do
  while ((running < jobs && ${#queue[@]} > 0)); do
    echo "$SECONDS" >"${results}/${queue[0]}.start"
    build "${queue[0]}" &
    queue=("${queue[@]:1}")
    running=$((running + 1))
  done
  wait -n
  running=$((running - 1))
  if [[ -z $ticker ]]; then
    for name in "${selected[@]}"; do
      if [[ -f ${results}/${name}.done && -z ${shown[$name]:-} ]]; then
        printf '%s %s' "${shown[*]:+,}" "$(said "$name")"
        shown[$name]=1
      fi
    done
  fi
done
if [[ -n $ticker ]]; then
  kill "$ticker"
  wait "$ticker" 2>/dev/null || true
  ticker=
  line
fi
echo

failed=()
for name in "${selected[@]}"; do
  read -r status _ <"${results}/${name}.done"
  [[ $status == 0 ]] || failed+=("$name")
done
for name in "${failed[@]}"; do
  echo "build-images: service-assembly/${name}:${image_tag} failed; the end of ${log_dir}/image-${name}.log:" >&2
  tail -n 25 "${log_dir}/image-${name}.log" | sed 's/^/    /' >&2
done
[[ ${#failed[@]} == 0 ]] || die "building ${failed[*]} failed (above)"
# Untagged build stages stay behind on purpose: they are the layer cache that keeps rebuilds
# quick. `make clean-all` removes them (they carry the project label).
