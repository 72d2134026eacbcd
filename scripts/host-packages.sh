#!/usr/bin/env bash
# Makes sure the host has what a make target needs outside Docker and the virtualenv.
# The one place that knows which Debian package provides what:
#
#   scripts/host-packages.sh GROUP...     groups: venv compose base-image test bench k8s ci
#
# Each need is probed by what the target uses (a command, a module file), so a machine that has it
# by other means (a tarball nginx, Docker Desktop's compose, pyenv's python) is left alone. What is
# missing is installed with apt-get when running as root, with one line saying so; otherwise the
# script stops with the exact command to run. LOG_DIR (default .cache) holds apt-get's output.
set -euo pipefail

repo_root=$(cd "$(dirname "$0")/.." && pwd)
log_file=${LOG_DIR:-${repo_root}/.cache}/host-packages.log

die() { echo "host-packages: $*" >&2; exit 1; }

# The Debian packages each group needs (checked one by one with present() below).
group_packages() {
  case $1 in
    venv) echo python3-venv ;;
    compose) echo docker-compose ;;
    base-image) echo debootstrap ;;
    # kubectl for scripts/validate-k8s.sh (which checks that it is recent enough).
    k8s) echo kubernetes-client ;;
    # The hostile-upstream suite runs nginx (with njs, rendered through envsubst) and node's own
    # http server as local processes; the bench's config tests run haproxy -c; the scorecard's
    # page is opened in headless chromium through chromedriver.
    test) echo nginx libnginx-mod-http-js gettext-base haproxy caddy nodejs chromium chromium-driver ;;
    bench) echo nginx libnginx-mod-http-js gettext-base haproxy caddy wrk ;;
    ci) echo make curl python3-venv docker-compose debootstrap \
      nginx libnginx-mod-http-js gettext-base haproxy caddy wrk nodejs chromium chromium-driver ;;
    *) die "unknown group '$1' (venv, compose, base-image, test, bench, k8s, ci)" ;;
  esac
}

has_command() { command -v "$1" >/dev/null 2>&1 || [[ -x /usr/sbin/$1 || -x /sbin/$1 ]]; }

# Whether what `package` provides is usable here.
present() {
  case $1 in
    libnginx-mod-http-js) [[ -f /usr/lib/nginx/modules/ngx_http_js_module.so ]] ;;
    gettext-base) has_command envsubst ;;
    kubernetes-client) has_command kubectl ;;
    nodejs) has_command node ;;
    # Another Chromium with its driver does as well (GitHub's runners have Google Chrome's pair).
    chromium) has_command chromium || has_command chromium-browser || has_command google-chrome ;;
    chromium-driver) has_command chromedriver ;;
    # Either Compose will do: the v2 plugin or v1's docker-compose.
    docker-compose) docker compose version >/dev/null 2>&1 || has_command docker-compose ;;
    python3-venv)
      # Debian's own python3 creates venvs only with python3-venv; another python brings ensurepip.
      if [[ $(command -v python3 || true) == /usr/bin/python3 ]] && has_command dpkg-query; then
        dpkg-query -W -f='${Status}' "python3-venv" 2>/dev/null | grep -q 'ok installed'
      else
        python3 -c 'import ensurepip, venv' >/dev/null 2>&1
      fi
      ;;
    *) has_command "$1" ;;
  esac
}

[[ $# -gt 0 ]] || die "usage: $0 GROUP... (venv, compose, base-image, test, bench, k8s, ci)"
wanted=()
for group in "$@"; do
  line=$(group_packages "$group") || exit 1
  read -r -a packages <<<"$line"
  wanted+=("${packages[@]}")
done
missing=()
for package in "${wanted[@]}"; do
  [[ " ${missing[*]} " == *" $package "* ]] && continue
  present "$package" || missing+=("$package")
done
[[ ${#missing[@]} -gt 0 ]] || exit 0

command_line="apt-get install -y --no-install-recommends ${missing[*]}"
if ! has_command apt-get; then
  die "$* needs: ${missing[*]} (Debian package names); install them with your package manager"
fi
if [[ $(id -u) != 0 ]]; then
  die "$* needs: ${missing[*]}. Run: sudo apt-get update && sudo ${command_line}"
fi

mkdir -p "$(dirname "$log_file")"
echo "host-packages: installing ${missing[*]} for $* (apt-get, as root; log ${log_file})" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } \
  </dev/null >"$log_file" 2>&1; then
  tail -n 15 "$log_file" >&2
  die "apt-get failed (above: the end of ${log_file}); to retry by hand: ${command_line}"
fi
for package in "${missing[@]}"; do
  present "$package" || die "${package} is installed but still not usable here (see ${log_file})"
done
