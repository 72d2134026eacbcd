"""HAProxy in the gateway's place: its config, rendered from the gateway's settings."""
