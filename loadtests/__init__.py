"""Locust scenarios comparing the gateways; `python -m loadtests` runs the comparison."""
