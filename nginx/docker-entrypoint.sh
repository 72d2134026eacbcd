#!/bin/sh
# Entrypoint of the nginx image: derives the SA_* variables from the settings
# (env.sh), then renders /etc/nginx/templates/*.template into /etc/nginx/conf.d.
# On the official nginx image its own /docker-entrypoint.sh does the rendering
# (20-envsubst-on-templates.sh, restricted by NGINX_ENVSUBST_FILTER=SA_); on the
# project's Debian base, which has no such entrypoint, env.sh does the same.
#
# Re-resolution: nginx 1.22 (open source) resolves upstream names once, at start.
# With DISCOVERY_INTERVAL > 0 a background loop resolves the STORAGE_SERVICES
# names again every DISCOVERY_INTERVAL seconds and, only when the addresses
# changed, re-renders the `server` lines and sends nginx SIGHUP (a reload: new
# worker processes start on the new configuration; the old ones finish their
# requests and exit).
set -eu

# shellcheck source=nginx/env.sh
. /usr/local/lib/service-assembly/nginx-env.sh
sa_nginx_env || exit 2
mkdir -p /tmp/nginx
template_dir=${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}
output_dir=${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}

# $1: the pid nginx's master runs as. The loop is a child of nginx (the shell
# execs nginx below, keeping its pid), so signals go to nginx alone and the loop
# never keeps a container alive: it ends with nginx's pid namespace, or, outside
# a container, at its next check that nginx still runs.
sa_follow_dns() {
    nginx_pid=$1
    routed=$SA_UPSTREAM_SERVERS
    while sleep "$SA_DISCOVERY_INTERVAL"; do
        kill -0 "$nginx_pid" 2>/dev/null || return 0
        sa_nginx_env || continue
        [ "$SA_UPSTREAM_SERVERS" != "$routed" ] || continue
        sa_render_templates "$template_dir" "$output_dir" || continue
        echo "nginx discovery: upstream now ${SA_BACKENDS:-(none)}; reloading nginx" >&2
        kill -HUP "$nginx_pid" || return 0
        routed=$SA_UPSTREAM_SERVERS
    done
}

if [ "${1:-}" = nginx ] && [ "$SA_DISCOVERY_INTERVAL" != 0 ]; then
    # $$ in the subshell is this shell's pid, which exec hands on to nginx.
    sa_follow_dns "$$" </dev/null &
fi

if [ -x /docker-entrypoint.sh ]; then
    exec /docker-entrypoint.sh "$@"
fi
sa_render_templates "$template_dir" "$output_dir"
exec "$@"
