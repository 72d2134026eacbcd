"""Locust scenarios comparing the gateways (`locust -f loadtests`); `python -m loadtests` runs the
comparison, whose driver and support code are the `loadcompare` package."""
