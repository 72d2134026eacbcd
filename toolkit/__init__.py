"""Machinery shared by the harness tools (tests/harness, tests/swarm, loadtests, bench).

The services never import it: they stay deployable on their own.
"""
