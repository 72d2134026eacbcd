"""A benchmark of our gateway against nginx and HAProxy: CPU per request, latency, failover."""
