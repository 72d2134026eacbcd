#!/usr/bin/env bash
# Removes what the deployments left behind after `compose down`: containers and networks of the
# compose projects. Images and caches stay, so the next deploy or test run reuses them. With
# ALL=1 also every project image (the five, the local base image and the untagged build stages
# that are Docker's layer cache), .cache/ and the scanners' .venv-scan/.
#   scripts/clean.sh [PROJECT ...]   (default: the gateway, nginx, haproxy and caddy projects)
# Touches nothing outside those compose projects and the images labelled as the project's.
set -euo pipefail

repo_root=$(cd "$(dirname "$0")/.." && pwd)
projects=("$@")
[[ ${#projects[@]} -gt 0 ]] ||
  projects=(service-assembly service-assembly-nginx service-assembly-haproxy service-assembly-caddy)
status=0

for project in "${projects[@]}"; do
  filter=label=com.docker.compose.project=${project}
  mapfile -t containers < <(docker ps -aq --filter "$filter")
  if [[ ${#containers[@]} -gt 0 ]]; then
    echo "clean: removing leftover containers of ${project}: ${containers[*]}"
    docker rm -f "${containers[@]}" >/dev/null
  fi
  mapfile -t networks < <(docker network ls -q --filter "$filter")
  if [[ ${#networks[@]} -gt 0 ]]; then
    echo "clean: removing leftover networks of ${project}: ${networks[*]}"
    docker network rm "${networks[@]}" >/dev/null
  fi
done

[[ ${ALL:-0} == 1 ]] || exit "$status"

# Every image the project built or imported carries this label; official base images a machine
# pulled do not, and stay.
label=label=com.service-assembly.project=service-assembly
# No -f: an image still used by a container we did not create (a test run) stays, and says so.
docker image prune -af --filter "$label" >/dev/null
echo "clean: removed the project's images, the local base image and the build stages"
mapfile -t left < <(docker images --filter "$label" --format '{{.Repository}}:{{.Tag}}')
if [[ ${#left[@]} -gt 0 ]]; then
  echo "clean: still used by a container, so kept: ${left[*]}" >&2
  status=1
fi
echo "clean: removing ${repo_root}/.cache (wheels, base rootfs, logs) and .venv-scan"
rm -rf --one-file-system "${repo_root}/.cache" "${repo_root}/.venv-scan"
exit "$status"
