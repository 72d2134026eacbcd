"""Gateway service: round-robin over storage services, with retries and health tracking."""

# The project's one version: /health and `--version` report it, pyproject.toml reads it, and
# scripts/version.sh hands it to image labels and CI tags.
__version__ = "0.1.0"
