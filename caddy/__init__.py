"""Caddy in the gateway's place: its Caddyfile, rendered from the gateway's settings."""
