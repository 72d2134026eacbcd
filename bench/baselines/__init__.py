"""Reference gateways the benchmark measures ours against; not used by the deployments."""
