"""Caddy's configuration (a Caddyfile), rendered from the gateway's setting names.

The image runs this at container start (`python3 -m caddy.render OUTPUT`, standard library
only); the settings are read and checked exactly as for HAProxy (haproxy/render.py).
"""

import os
import sys
from pathlib import Path

from haproxy.render import SettingError, Settings, settings_from, storage_authorities

UNAVAILABLE = '{"detail": "no storage service available"}'
FAIL_TIMEOUT_DEFAULT_S = 10.0
"""The gateway's own default (HAProxy has no FAIL_TIMEOUT, so haproxy/render.py lacks it)."""


def _duration(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def render(
    port: int,
    servers: list[str],
    settings: Settings,
    fail_timeout_s: float,
    *,
    bind_host: str | None = None,
) -> str:
    """The whole Caddyfile: `servers` are host:port authorities, in rotation order.

    `bind_host`: the one address to listen on (the bench: loopback); None, every interface.

    Caddy dials a name as it opens each connection, so a changed address is followed without
    DISCOVERY_INTERVAL; its dynamic upstreams would re-resolve too, but Caddy 2.6 runs no active
    health checks on them.
    """
    s = settings
    active = (
        f"""
			health_uri /health
			health_interval {_duration(s.health_interval_s)}
			health_timeout {_duration(s.health_timeout_s)}
			health_status 200"""
        if s.health_interval_s > 0
        else ""
    )
    passive = (
        f"""
			fail_duration {_duration(fail_timeout_s)}
			max_fails {s.max_fails}
			unhealthy_status 5xx"""
        if s.max_fails > 0
        else ""
    )
    # Long enough for a hanging attempt and a connect to the next server; a retry starts
    # only while this lasts.
    try_duration = s.read_timeout_s + s.connect_timeout_s
    log = "\n\tlog {\n\t\toutput stdout\n\t\tformat json\n\t}" if s.access_log else ""
    # ADMIN_PORT: Caddy's admin API, which can change the upstreams at runtime (no token: keep
    # the address private); off otherwise, as before.
    admin = f"admin {s.admin_host}:{s.admin_port}" if s.admin_port else "admin off"
    # least_request: the fewest requests in flight (Caddy 2.6 has no weights to weigh them by).
    policy = "least_conn" if s.balancing == "least_request" else "round_robin"
    # `bind`, not a host in the site address: that would also match requests by Host header.
    bind = f"\n\tbind {bind_host}" if bind_host else ""
    return f"""# Rendered by caddy/render.py from the gateway's setting names (docs/deploy.md).
{{
	{admin}
	auto_https off
	# A stop (SIGTERM) lets requests in flight finish for this long, then closes what is left.
	grace_period {_duration(s.shutdown_timeout_s)}
	servers {{
		# Go adds 4 KiB to this: 8 KiB of request head in all, like nginx's buffers.
		max_header_size 4KB
	}}
}}

:{port} {{{bind}{log}
	route {{
		# X-Request-ID: a client's 1..128 of [A-Za-z0-9._:-] is kept, anything else replaced.
		@rid_invalid not header_regexp X-Request-ID ^[A-Za-z0-9._:-]{{1,128}}$
		request_header @rid_invalid X-Request-ID {{http.request.uuid}}
		header X-Request-ID {{http.request.header.X-Request-ID}}

		@health path /health
		handle @health {{
			header Content-Type application/json
			# Its own state now: no cache may keep it (as ours and nginx say too).
			header Cache-Control no-store
			respond `{{"status": "ok"}}` 200
		}}

		@data path /data
		@data_other {{
			path /data
			not method GET HEAD
		}}
		handle @data_other {{
			header Content-Type application/json
			header Allow "GET, HEAD"
			respond `{{"detail": "Method Not Allowed"}}` 405
		}}
		handle @data {{
			# Storage services answer GET only; Go's server still sends no body to a HEAD client.
			method GET
			reverse_proxy {" ".join(servers)} {{
				lb_policy {policy}
				lb_try_duration {_duration(try_duration)}
				lb_try_interval 10ms{active}{passive}
				# The storage service echoes the id too; the client must see it once.
				header_down -X-Request-ID
				transport http {{
					dial_timeout {_duration(s.connect_timeout_s)}
					response_header_timeout {_duration(s.read_timeout_s)}
				}}
				# A 5xx that reached the client would break the contract: answer the 503 below.
				@failed status 5xx
				handle_response @failed {{
					error "storage service failed" 503
				}}
			}}
		}}

		handle {{
			header Content-Type application/json
			respond `{{"detail": "Not Found"}}` 404
		}}
	}}

	handle_errors {{
		header X-Request-ID {{http.request.header.X-Request-ID}}
		header Content-Type application/json
		header Retry-After {s.retry_after_s}
		respond `{UNAVAILABLE}` 503
	}}
}}
"""


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python3 -m caddy.render OUTPUT_FILE", file=sys.stderr)
        return 2
    env = os.environ
    try:
        settings = settings_from(env)
        fail_timeout = float(env.get("FAIL_TIMEOUT", str(FAIL_TIMEOUT_DEFAULT_S)))
        if not 0 < fail_timeout <= 3600:
            raise SettingError(
                f"FAIL_TIMEOUT must be a positive number of seconds, got {fail_timeout}"
            )
        port = int(env.get("CADDY_LISTEN_PORT", "8082"))
        config = render(
            port, storage_authorities(env.get("STORAGE_SERVICES", "")), settings, fail_timeout
        )
    except (SettingError, ValueError) as error:
        print(f"caddy config: {error}", file=sys.stderr)
        return 2
    Path(argv[1]).write_text(config)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
