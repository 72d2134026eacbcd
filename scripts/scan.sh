#!/usr/bin/env bash
# Offline scans of what the project ships (`make scan`; CI runs it):
#   hadolint  every Dockerfile
#   checkov   Dockerfiles, compose and stack files (--skip-download: offline)
#   k8s/      scripts/validate-k8s.sh when present (API schemas, then checkov on the rendered objects)
#   bandit    the Python code, tests included, with pyproject.toml's [tool.bandit] settings
# A finding is fixed or justified where it is: `# hadolint ignore=`, `# checkov:skip=`, `# nosec`,
# each with its reason. Every scanner runs; the script fails at the end if any found something.
# The tools come from PATH: `make scan` puts .venv-scan/bin (requirements-scan.txt) first.
set -euo pipefail

cd "$(dirname "$0")/.."
shopt -s nullglob

die() { echo "scan: $*" >&2; exit 1; }
for tool in hadolint checkov bandit; do
  command -v "$tool" >/dev/null 2>&1 ||
    die "$tool is not on PATH; run 'make scan' (it installs requirements-scan.txt into .venv-scan)"
done

failed=()
scan() {
  local name=$1
  shift
  echo "==> scan: ${name}"
  if "$@"; then echo "scan: ${name}: ok"; else failed+=("$name"); fi
}

mapfile -t dockerfiles < <(find . \( -name '.venv*' -o -name .cache -o -name .git -o -name results \) \
  -prune -o -type f -name 'Dockerfile*' -print | sort)
color=()
[[ -t 1 ]] || color=(--no-color)
scan hadolint hadolint "${color[@]}" "${dockerfiles[@]}"

# checkov 3.3 has checks for Dockerfiles but none for compose or stack files; they are given all
# the same, so that checks a later checkov adds apply. The workflows are zizmor's (`make lint`).
checkov_files=()
for file in "${dockerfiles[@]}" docker-compose*.yml docker-stack*.yml; do
  checkov_files+=(-f "$file")
done
scan checkov checkov --skip-download --quiet --compact "${checkov_files[@]}"

if [[ -f scripts/validate-k8s.sh ]]; then
  scan "k8s manifests" scripts/validate-k8s.sh
elif [[ -d k8s ]]; then
  scan "k8s manifests" checkov --skip-download --quiet --compact --framework kubernetes -d k8s
fi

scan "bandit (code)" bandit --quiet -c pyproject.toml -r . -x '*/tests/*'
# Test code too, but without B108 (fixed /tmp paths) and B311 (random, often seeded): in tests
# they flag test data, not a risk.
mapfile -t test_dirs < <(find . \( -name '.venv*' -o -name .cache -o -name .git \) -prune \
  -o -type d -name tests -print | sort)
scan "bandit (tests)" bandit --quiet -c pyproject.toml -s B108,B311 -r "${test_dirs[@]}"

if [[ ${#failed[@]} -gt 0 ]]; then
  die "findings from: ${failed[*]} (above); fix each or justify it inline"
fi
echo "scan: hadolint, checkov and bandit found nothing to fix"
