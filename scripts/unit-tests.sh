#!/usr/bin/env bash
# The services' unit tests, the gate every deploy passes first (`make test-services`). They run
# once per state of the code: a pass is remembered under a digest of both services' files, the
# requirements and the interpreter, so the second deploy of the same tree (deploy, then
# deploy-nginx; CI deploys four times) does not run the same tests on the same code again. Any
# change to a file they cover runs them again; `make clean-all` (it removes .cache) forgets them.
#
#   scripts/unit-tests.sh PYTHON
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: $0 PYTHON" >&2; exit 2; }
python=$1
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

label="unit tests of gateway_service and storage_service"
digest=$(
  {
    "$python" --version 2>&1
    find gateway_service storage_service -type f ! -path '*/__pycache__/*' -print0 \
      | sort -z | xargs -0 sha256sum
    sha256sum pyproject.toml requirements-deploy.txt requirements-dev.txt
  } | sha256sum | cut -c1-16
)
stamp=.cache/unit-tests/passed-${digest}

if [[ -e $stamp ]]; then
  echo "==> ${label} ... passed already for this code (${digest})"
  exit 0
fi
scripts/step.sh unit-tests "$label" "$python" -m pytest -m "not slow" \
  gateway_service/tests storage_service/tests
mkdir -p "$(dirname "$stamp")"
touch "$stamp"
