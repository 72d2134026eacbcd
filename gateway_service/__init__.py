"""Gateway service: round-robin over storage services, with retries and health tracking."""
