#!/usr/bin/env bash
# Prints the project images (service-assembly/NAME:dev) that compose or stack files run, one NAME a
# line: what scripts/build-images.sh builds for a deployment and scripts/swarm.sh checks for.
#   scripts/images-of.sh FILE ...
set -euo pipefail

[[ $# -gt 0 ]] || { echo "usage: $0 FILE ..." >&2; exit 2; }
sed -n 's|^ *image: *service-assembly/\([a-z]*\):dev *$|\1|p' "$@" | awk '!seen[$0]++'
