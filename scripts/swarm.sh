#!/usr/bin/env bash
# The Docker Swarm deployments (docker-stack.yml, docker-stack.nginx.yml), for the Makefile.
#   scripts/swarm.sh deploy STACK FILE URL [TIMEOUT]  init if needed, deploy, wait until every task
#                                                    runs and URL/health and URL/data answer 200
#   scripts/swarm.sh remove STACK ...                 remove the stacks, wait for their networks to go
#   scripts/swarm.sh down                             remove both stacks; leave the swarm if make
#                                                    initialised it
# Uses the locally built images only (`--resolve-image never`: there may be no registry).
set -euo pipefail

repo_root=$(cd "$(dirname "$0")/.." && pwd)
# Present while the swarm on this node is one that make initialised (so make may leave it).
marker=${repo_root}/.cache/swarm-initialised-by-make
stacks=(service-assembly-swarm service-assembly-swarm-nginx)

fail() {
  echo "swarm: $*" >&2
  exit 1
}

swarm_state() {
  docker info --format '{{.Swarm.LocalNodeState}}'
}

init() {
  [[ $(swarm_state) == active ]] && return 0
  # 127.0.0.1: a single node needs no address reachable by others, and it exists on every host.
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null
  mkdir -p "$(dirname "$marker")"
  touch "$marker"
  echo "swarm: no swarm was active; initialised a single-node one (make clean leaves it again)"
}

# Prints what still keeps STACK from being ready, or nothing when every service has all its
# replicas running.
not_ready() {
  local stack=$1
  docker stack services "$stack" --format '{{.Name}} {{.Replicas}}' | awk '
    { split($2, r, "/"); if (r[1] != r[2] || r[2] == 0) printf "%s %s running; ", $1, $2 }'
}

wait_ready() {
  local stack=$1 url=$2 timeout=$3
  local deadline=$((SECONDS + timeout)) pending
  while :; do
    pending=$(not_ready "$stack")
    # /data too: the front may answer /health before it has found a storage task (tasks start in
    # any order, and a name resolves only once a task of it runs).
    if [[ -z $pending ]] && curl -fsS -o /dev/null --max-time 2 "$url/health" 2>/dev/null &&
      curl -fsS -o /dev/null --max-time 5 "$url/data" 2>/dev/null; then
      return 0
    fi
    if ((SECONDS >= deadline)); then
      echo "swarm: ${stack} not ready after ${timeout}s: ${pending:-$url/health or /data does not answer 200}" >&2
      docker stack ps "$stack" --no-trunc --format '  {{.Name}} {{.CurrentState}} {{.Error}}' >&2 || true
      return 1
    fi
    sleep 1
  done
}

deploy() {
  [[ $# -ge 3 ]] || fail "usage: $0 deploy STACK FILE URL [TIMEOUT]"
  local stack=$1 file=$2 url=$3 timeout=${4:-120}
  local image
  for image in $("${repo_root}/scripts/images-of.sh" "$file"); do
    docker image inspect "service-assembly/${image}:dev" >/dev/null 2>&1 ||
      fail "image service-assembly/${image}:dev is missing: run 'make images'"
  done
  init
  docker stack deploy --resolve-image never --prune -c "$file" "$stack"
  wait_ready "$stack" "$url" "$timeout"
}

remove() {
  local stack left deadline=$((SECONDS + 60))
  local present=()
  for stack in "$@"; do
    if [[ -n $(docker stack services -q "$stack" 2>/dev/null) ]] ||
      [[ -n $(docker network ls -q --filter "label=com.docker.stack.namespace=${stack}") ]]; then
      docker stack rm "$stack" >/dev/null
      echo "swarm: removed stack ${stack}"
      present+=("$stack")
    fi
  done
  # `docker stack rm` returns before the tasks and the overlay network are gone; a new deploy or
  # `docker swarm leave` right after would trip over them.
  for stack in "${present[@]}"; do
    while :; do
      left=$(
        docker ps -aq --filter "label=com.docker.stack.namespace=${stack}"
        docker network ls -q --filter "label=com.docker.stack.namespace=${stack}"
      )
      [[ -z $left ]] && break
      ((SECONDS < deadline)) || fail "stack ${stack} still has containers or networks after 60s"
      sleep 1
    done
  done
}

down() {
  [[ $(swarm_state) == active ]] && remove "${stacks[@]}"
  if [[ -f $marker ]]; then
    if [[ $(swarm_state) == active ]]; then
      docker swarm leave --force >/dev/null
      echo "swarm: left the single-node swarm that make initialised"
    fi
    rm -f "$marker"
  fi
}

command -v docker >/dev/null 2>&1 || fail "docker is not installed"
case ${1:-} in
  deploy) shift; deploy "$@" ;;
  remove) shift; [[ $(swarm_state) == active ]] && remove "$@"; true ;;
  down) down ;;
  *) fail "usage: $0 deploy STACK FILE URL [TIMEOUT] | remove STACK ... | down" ;;
esac
