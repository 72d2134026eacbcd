"""Unit tests of the load tests' own logic; no Docker, no gateway.

File names start with `_` (pytest collects them as `*_test.py`): `locust -f loadtests` imports every
.py file in the tree whose name does not start with `_` as a locustfile.
"""
