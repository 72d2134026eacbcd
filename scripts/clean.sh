#!/usr/bin/env bash
# Removes what the deployments left behind after `compose down`: containers and
# networks of the compose projects, the project images, untagged build
# leftovers. With ALL=1 also the local base image, .cache/ and the scanners' .venv-scan/.
#   scripts/clean.sh [PROJECT ...]   (default: the gateway, nginx, haproxy and caddy projects)
# Touches nothing outside those compose projects and the project's image names.
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

images=(service-assembly/storage:dev service-assembly/gateway:dev service-assembly/nginx:dev
  service-assembly/haproxy:dev service-assembly/caddy:dev)
[[ ${ALL:-0} == 1 ]] && images+=("${BASE_IMAGE_LOCAL:-service-assembly/base:bookworm}")
for image in "${images[@]}"; do
  docker image inspect "$image" >/dev/null 2>&1 || continue
  # No -f: an image still used by a container we did not create (a test run) stays.
  if docker rmi "$image" >/dev/null; then
    echo "clean: removed image $image"
  else
    status=1
  fi
done
docker image prune -f --filter label=com.service-assembly.project=service-assembly >/dev/null

if [[ ${ALL:-0} == 1 ]]; then
  echo "clean: removing ${repo_root}/.cache (wheels, base rootfs, base image choice) and .venv-scan"
  rm -rf --one-file-system "${repo_root}/.cache" "${repo_root}/.venv-scan"
fi
exit "$status"
