#!/usr/bin/env bash
# Runs one long step of a make target as one line of progress, "==> LABEL ... 34 s", so that a
# first deploy never looks stuck and a warm one stays short. The command's own output goes to
# .cache/logs/NAME.log (LOG_DIR moves it) and its end is shown only when the step fails. On a
# terminal the line counts the seconds while the step runs.
#
#   scripts/step.sh NAME LABEL COMMAND [ARG ...]
set -euo pipefail

[[ $# -ge 3 ]] || { echo "usage: $0 NAME LABEL COMMAND [ARG ...]" >&2; exit 2; }
name=$1 label=$2
shift 2
log_dir=${LOG_DIR:-$(cd "$(dirname "$0")/.." && pwd)/.cache/logs}
log=${log_dir}/${name}.log
mkdir -p "$log_dir"

SECONDS=0
ticker=
if [[ -t 1 ]]; then
  printf '==> %s ...' "$label"
  # The subshell's SECONDS goes on counting from this shell's.
  (while sleep 1; do printf '\r==> %s ... %d s' "$label" "$SECONDS"; done) &
  ticker=$!
else
  printf '==> %s ... ' "$label"
fi

status=0
"$@" </dev/null >"$log" 2>&1 || status=$?
if [[ -n $ticker ]]; then
  kill "$ticker"
  wait "$ticker" 2>/dev/null || true
  printf '\r==> %s ... ' "$label"
fi
if [[ $status == 0 ]]; then
  echo "${SECONDS} s"
  exit 0
fi
echo "failed after ${SECONDS} s (exit status ${status}); the end of ${log}:"
tail -n 30 "$log" | sed 's/^/    /' >&2
exit "$status"
