"""Unit tests of the load comparison and its locust scenarios; no Docker, no gateway."""
