#!/bin/sh
# Renders a complete nginx configuration for running nginx as a host process
# (the benchmark does this), from the same files and settings as the image.
#
#   STORAGE_SERVICES=http://127.0.0.1:9001,http://127.0.0.1:9002 NGINX_LISTEN_PORT=18080 \
#       nginx/render-config.sh /tmp/sa-nginx
#   nginx -p /tmp/sa-nginx/ -c /tmp/sa-nginx/nginx.conf -e stderr -g 'daemon off; worker_processes 1;'
#
# Settings are listed in docs/deploy.md. The output directory is also nginx's
# prefix: pid file and temp directories land there, so several instances can
# run side by side.
set -eu

[ $# -eq 1 ] || { echo "usage: $0 OUTPUT_DIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
out=$1

# shellcheck source=nginx/env.sh
. "$here/env.sh"
sa_nginx_env || exit 2

mkdir -p "$out/conf.d" "$out/njs"
cp "$here/nginx.conf" "$out/nginx.conf"
cp "$here/njs/status.js" "$out/njs/status.js"
sa_render_templates "$here/templates" "$out/conf.d"
echo "$out/nginx.conf"
