#!/bin/sh
# Entrypoint of the Caddy image: renders /tmp/caddy/Caddyfile from the gateway's setting
# names (render.py prints one line and stops the container on a bad one), then runs Caddy.
set -eu
mkdir -p /tmp/caddy
python3 -m caddy.render /tmp/caddy/Caddyfile || exit 2
exec "$@"
