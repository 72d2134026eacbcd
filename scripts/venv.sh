#!/usr/bin/env bash
# Creates the virtualenv DIR when it is missing and installs REQUIREMENTS into it, as one line of
# progress (pip's output in .cache/logs/). For the Makefile's stamps: .venv gets
# requirements-deploy.txt first and requirements-dev.txt only for the targets that need it;
# .venv-scan gets requirements-scan.txt.
#   scripts/venv.sh DIR REQUIREMENTS
set -euo pipefail

[[ $# == 2 ]] || { echo "usage: $0 DIR REQUIREMENTS" >&2; exit 2; }
dir=$1 requirements=$2
scripts=$(cd "$(dirname "$0")" && pwd)

if [[ ! -x $dir/bin/python ]]; then
  "$scripts/host-packages.sh" venv
  python3 -m venv "$dir"
fi
"$scripts/step.sh" "pip-$(basename "$dir")-$(basename "$requirements" .txt)" \
  "virtualenv ${dir}: ${requirements}" \
  "$dir/bin/pip" install --disable-pip-version-check -r "$requirements"
