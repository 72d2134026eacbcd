"""Storage service: serves in-memory dummy data and reports its own health."""
