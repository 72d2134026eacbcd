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

# WORKERS and SHUTDOWN_TIMEOUT become main-context directives, which the static
# nginx.conf leaves to the command's -g (nginx reads one -g only): WORKERS
# replaces `worker_processes` there (unset, the CMD's `auto` stays: one worker
# per CPU nginx may run on, whatever CPU quota the container has), and
# `worker_shutdown_timeout` bounds how long a stop (SIGQUIT) or a reload lets
# requests in flight finish before nginx closes their connections.
if [ "${1:-}" = nginx ]; then
    directives="worker_shutdown_timeout $(sa_seconds SHUTDOWN_TIMEOUT "${SHUTDOWN_TIMEOUT:-10}");" || exit 2
    drop='s/worker_shutdown_timeout[^;]*;//'
    if [ -n "${WORKERS+set}" ]; then
        # 1..64, as for the gateway (gateway_service/settings.py).
        case $WORKERS in
            [1-9] | [1-5][0-9] | 6[0-4]) ;;
            *) echo "nginx config: WORKERS must be an integer from 1 to 64, got \"$WORKERS\"" >&2; exit 2 ;;
        esac
        directives="worker_processes $WORKERS; $directives"
        drop="$drop; s/worker_processes[^;]*;//"
    fi
    g_arg=''
    for arg do
        shift
        if [ "$g_arg" = next ]; then
            arg=$(printf '%s' "$arg" | sed -e "$drop" -e 's/  */ /g' -e 's/^ //' -e 's/ $//')
            arg="${arg:+$arg }$directives"
            g_arg=rewritten
        elif [ "$arg" = -g ] && [ -z "$g_arg" ]; then
            g_arg=next
        fi
        set -- "$@" "$arg"
    done
    [ "$g_arg" = rewritten ] || set -- "$@" -g "$directives"
fi

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
