"""A benchmark of our gateway against nginx, HAProxy and Caddy: CPU per request, latency,
failover, memory with large bodies."""
