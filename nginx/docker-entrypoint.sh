#!/bin/sh
# Entrypoint of the nginx image: derives the SA_* variables from the settings
# (env.sh), then renders /etc/nginx/templates/*.template into /etc/nginx/conf.d.
# On the official nginx image its own /docker-entrypoint.sh does the rendering
# (20-envsubst-on-templates.sh, restricted by NGINX_ENVSUBST_FILTER=SA_); on the
# project's Debian base, which has no such entrypoint, env.sh does the same.
set -eu

# shellcheck source=nginx/env.sh
. /usr/local/lib/service-assembly/nginx-env.sh
sa_nginx_env || exit 2
mkdir -p /tmp/nginx

if [ -x /docker-entrypoint.sh ]; then
    exec /docker-entrypoint.sh "$@"
fi
sa_render_templates "${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}" \
    "${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}"
exec "$@"
