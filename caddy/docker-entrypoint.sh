#!/bin/sh
# Entrypoint of the Caddy image: renders /tmp/caddy/Caddyfile from the gateway's setting
# names (render.py prints one line and stops the container on a bad one), then runs Caddy.
set -eu
mkdir -p /tmp/caddy
python3 -m caddy.render /tmp/caddy/Caddyfile || exit 2
# WORKERS (render.py has checked it) is Go's GOMAXPROCS: the threads that run Go code at once.
# Unset, Go counts the CPUs Caddy may run on, whatever CPU quota the container has.
if [ -n "${WORKERS+set}" ]; then
    GOMAXPROCS=$(printf '%s' "$WORKERS" | tr -d '[:space:]')
    export GOMAXPROCS
fi
exec "$@"
