#!/usr/bin/env bash
# Waits until every container of a compose project is running and healthy.
#   scripts/wait-healthy.sh PROJECT [TIMEOUT_SECONDS]   (default 120)
# Fails at once when a container exits or turns unhealthy, showing its last log lines.
set -euo pipefail

project=$1
timeout=${2:-120}
deadline=$((SECONDS + timeout))

while :; do
  mapfile -t ids < <(docker ps -aq --filter "label=com.docker.compose.project=${project}")
  [[ ${#ids[@]} -gt 0 ]] || { echo "wait-healthy: project ${project} has no containers" >&2; exit 1; }
  pending=()
  for id in "${ids[@]}"; do
    read -r name state health < <(docker inspect -f \
      '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id")
    name=${name#/}
    if [[ $state == exited || $state == dead || $health == unhealthy ]]; then
      echo "wait-healthy: ${name} is ${state}/${health}; its last log lines:" >&2
      docker logs --tail 20 "$id" >&2 || true
      exit 1
    fi
    [[ $state == running && ($health == healthy || $health == none) ]] || pending+=("${name}(${state}/${health})")
  done
  [[ ${#pending[@]} -gt 0 ]] || exit 0
  if ((SECONDS >= deadline)); then
    echo "wait-healthy: not healthy after ${timeout}s: ${pending[*]}" >&2
    exit 1
  fi
  sleep 1
done
