#!/usr/bin/env bash
# Prints the project's version. It lives in one place, gateway_service/__init__.py (`__version__`),
# which the gateway reports and pyproject.toml reads; images and CI tags take it from here.
set -euo pipefail

init=$(cd "$(dirname "$0")/.." && pwd)/gateway_service/__init__.py
version=$(sed -n 's/^__version__ = "\([^"]*\)"$/\1/p' "$init")
[[ -n $version ]] || { echo "version: no __version__ = \"...\" line in ${init}" >&2; exit 1; }
echo "$version"
