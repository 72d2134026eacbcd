# shellcheck shell=sh
# Derives the SA_* variables that templates/default.conf.template uses from the
# documented settings (docs/deploy.md) and from what the STORAGE_SERVICES names
# resolve to now: the image's entrypoint, its re-resolution loop and host runs
# (render-config.sh) all source this file and call sa_nginx_env, which exports
# SA_* or prints one line and returns 1.

sa_fail() {
    echo "nginx config: $*" >&2
    return 1
}

# seconds (e.g. "1", "0.25") -> nginx time: "1000ms", or with a third argument
# "s" whole seconds rounded up ("1s"), for directives that take no milliseconds.
sa_seconds() {
    awk -v name="$1" -v value="$2" -v unit="${3:-ms}" 'BEGIN {
        if (value !~ /^[0-9]+(\.[0-9]+)?$/ || value + 0 <= 0) {
            printf "nginx config: %s must be a positive number of seconds, got \"%s\"\n", name, value > "/dev/stderr"
            exit 1
        }
        if (unit == "s") {
            whole = int(value)
            printf "%ds", whole < value ? whole + 1 : whole
        } else {
            printf "%dms", value * 1000 + 0.5
        }
    }'
}

sa_integer() {
    case $2 in
        '' | *[!0-9]*) sa_fail "$1 must be a non-negative integer, got \"$2\"" ;;
        *) printf '%s' "$2" ;;
    esac
}

# DISCOVERY_INTERVAL: seconds, 0 (resolve once, at start) up to 3600, like the gateway's.
sa_interval() {
    awk -v value="$1" 'BEGIN {
        if (value !~ /^[0-9]+(\.[0-9]+)?$/ || value + 0 > 3600) {
            printf "nginx config: DISCOVERY_INTERVAL must be a number of seconds from 0 to 3600, got \"%s\"\n", value > "/dev/stderr"
            exit 1
        }
        printf "%s", value + 0
    }'
}

# The addresses HOST resolves to now, one per line, sorted (the gateway's order);
# a dotted IPv4 address stands for itself. Prints nothing when HOST does not resolve.
sa_resolve() {
    case $1 in
        *[!0-9.]*) getent ahosts "$1" 2>/dev/null | awk '{ print $1 }' | LC_ALL=C sort -u ;;
        *) printf '%s\n' "$1" ;;
    esac
}

# Sets `addresses` to those of HOST to route to: what it resolves to now, else (a
# failed resolution: a DNS hiccup, every replica briefly gone) the last good set,
# kept in sa_last_good ("host addr addr" lines) across calls in one shell, which
# is why this sets a variable instead of printing into a command substitution.
sa_addresses() {
    addresses=$(sa_resolve "$1" | tr '\n' ' ')
    addresses=${addresses% }
    if [ -n "$addresses" ]; then
        sa_last_good=$(printf '%s\n' "${sa_last_good:-}" | awk -v host="$1" 'NF && $1 != host')
        sa_last_good="${sa_last_good:+$sa_last_good
}$1 $addresses"
        return 0
    fi
    addresses=$(printf '%s\n' "${sa_last_good:-}" | awk -v host="$1" '$1 == host { $1 = ""; sub(/^ /, ""); print }')
    [ -z "$addresses" ] || echo "nginx discovery: $1 does not resolve; keeping its last addresses $addresses" >&2
}

sa_nginx_env() {
    [ -n "${STORAGE_SERVICES:-}" ] ||
        sa_fail "STORAGE_SERVICES is required, e.g. http://storage1:8000,http://storage2:8000" || return 1

    max_fails=$(sa_integer MAX_FAILS "${MAX_FAILS:-1}") || return 1
    fail_timeout=$(sa_seconds FAIL_TIMEOUT "${FAIL_TIMEOUT:-10}" s) || return 1
    interval=$(sa_interval "${DISCOVERY_INTERVAL:-5}") || return 1

    servers=''
    backends=''
    urls=''
    old_ifs=$IFS
    IFS=','
    for entry in $STORAGE_SERVICES; do
        url=$(printf '%s' "$entry" | tr -d ' \t')
        url=${url%/}
        [ -n "$url" ] || continue
        authority=${url#http://}
        case $url in
            http://*) ;;
            *) IFS=$old_ifs; sa_fail "STORAGE_SERVICES entries must be http://host:port URLs, got \"$entry\"" || return 1 ;;
        esac
        case $authority in
            '' | */* | *[!A-Za-z0-9._:-]*)
                IFS=$old_ifs; sa_fail "STORAGE_SERVICES entries must be http://host:port without a path, got \"$entry\"" || return 1 ;;
        esac
        case $authority in
            *:*) ;;
            *) authority="$authority:80" ;;
        esac
        urls="${urls:+$urls,}$url"
        # One `server` line per address, not per name: nginx would resolve a name once, at
        # start, and never again; the entrypoint's loop re-renders these lines instead.
        host=${authority%:*}
        port=${authority##*:}
        IFS=$old_ifs
        sa_addresses "$host"
        if [ -z "$addresses" ]; then
            # At start with discovery on: no server for this name until it resolves.
            [ "$interval" != 0 ] ||
                sa_fail "STORAGE_SERVICES host \"$host\" does not resolve (DISCOVERY_INTERVAL=0 resolves only at start)" ||
                return 1
            echo "nginx discovery: $host does not resolve (yet); no server for $url until it does" >&2
        fi
        for address in $addresses; do
            case $address in
                *:*) address="[$address]" ;;
            esac
            servers="${servers}server ${address}:${port} max_fails=${max_fails} fail_timeout=${fail_timeout}; "
            backends="${backends:+$backends,}$url ${address}:${port}"
        done
        IFS=','
    done
    IFS=$old_ifs
    [ -n "$urls" ] || sa_fail "STORAGE_SERVICES lists no URL" || return 1
    # nginx refuses an upstream without servers: one marked down answers like all-down (503).
    [ -n "$servers" ] || servers='server 127.0.0.1:9 down; '

    # BALANCING: least_request is nginx's least_conn (fewest active connections, shared by the
    # workers through the zone), round_robin its default.
    case ${BALANCING:-round_robin} in
        round_robin) balancing='' ;;
        least_request) balancing='least_conn;' ;;
        *) sa_fail "BALANCING must be one of round_robin, least_request, got \"$BALANCING\"" || return 1 ;;
    esac

    case ${ACCESS_LOG:-true} in
        true | 1 | yes) access_log='/dev/stdout sa_access' ;;
        false | 0 | no) access_log='off' ;;
        *) sa_fail "ACCESS_LOG must be true or false, got \"$ACCESS_LOG\"" || return 1 ;;
    esac

    SA_UPSTREAM_SERVERS=$servers
    SA_BALANCING=$balancing
    SA_BACKENDS=$backends
    SA_DISCOVERY_INTERVAL=$interval
    SA_ACCESS_LOG=$access_log
    SA_LISTEN_PORT=$(sa_integer NGINX_LISTEN_PORT "${NGINX_LISTEN_PORT:-8080}") || return 1
    SA_KEEPALIVE=$(sa_integer NGINX_KEEPALIVE "${NGINX_KEEPALIVE:-32}") || return 1
    SA_NEXT_UPSTREAM_TRIES=$(sa_integer NGINX_NEXT_UPSTREAM_TRIES "${NGINX_NEXT_UPSTREAM_TRIES:-3}") || return 1
    SA_CONNECT_TIMEOUT=$(sa_seconds CONNECT_TIMEOUT "${CONNECT_TIMEOUT:-1.0}") || return 1
    SA_READ_TIMEOUT=$(sa_seconds READ_TIMEOUT "${READ_TIMEOUT:-5.0}") || return 1
    SA_HEALTH_TIMEOUT=$(sa_seconds HEALTH_TIMEOUT "${HEALTH_TIMEOUT:-1.0}") || return 1
    SA_CLIENT_TIMEOUT=$(sa_seconds CLIENT_TIMEOUT "${CLIENT_TIMEOUT:-10}") || return 1
    SA_RETRY_AFTER=$(sa_integer RETRY_AFTER "${RETRY_AFTER:-1}") || return 1
    export SA_UPSTREAM_SERVERS SA_BALANCING SA_BACKENDS SA_DISCOVERY_INTERVAL SA_ACCESS_LOG SA_LISTEN_PORT \
        SA_KEEPALIVE SA_NEXT_UPSTREAM_TRIES SA_CONNECT_TIMEOUT SA_READ_TIMEOUT SA_HEALTH_TIMEOUT \
        SA_CLIENT_TIMEOUT SA_RETRY_AFTER
}

# Renders every *.template under $1 into $2 (same relative path, without
# .template), substituting only the variables whose names start with
# NGINX_ENVSUBST_FILTER, like the official image's 20-envsubst-on-templates.sh.
sa_render_templates() {
    template_dir=$1
    output_dir=$2
    filter=${NGINX_ENVSUBST_FILTER:-SA_}
    # envsubst's SHELL-FORMAT argument: the literal text "${NAME} ..." for each name.
    # shellcheck disable=SC2016,SC2046 # names are plain identifiers
    defined_envs=$(printf '${%s} ' $(env | cut -d= -f1 | grep -E "^(${filter})"))
    find "$template_dir" -follow -type f -name '*.template' | while read -r template; do
        relative=${template#"$template_dir"/}
        output=$output_dir/${relative%.template}
        mkdir -p "$(dirname "$output")"
        envsubst "$defined_envs" <"$template" >"$output" || return 1
    done
}
