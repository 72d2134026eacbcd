#!/bin/sh
# Entrypoint of the HAProxy image: renders /tmp/haproxy/haproxy.cfg from the gateway's setting
# names (render.py prints one line and stops the container on a bad one), then runs HAProxy.
set -eu
mkdir -p /tmp/haproxy
python3 -m haproxy.render /tmp/haproxy/haproxy.cfg || exit 2
exec "$@"
