#!/usr/bin/env bash
# Checks the Kubernetes manifests offline (no cluster runs here), for every kustomization under k8s/:
#   1. `kubectl kustomize` renders it (kubectl 1.27 or later: its kustomize v5 reads `labels:`);
#   2. `kubernetes-validate --strict` checks every rendered object against the API schemas of
#      KUBERNETES_VERSION (default 1.30), refusing unknown fields;
#   3. `checkov --framework kubernetes` scans the rendered objects for insecure settings.
# kubernetes-validate and checkov are taken from PATH (requirements-scan.txt pins them; `make scan`
# installs them into .venv-scan). A missing kubectl is installed by scripts/host-packages.sh.
# Exits non-zero at the first problem, after the tool's own output.
#
#   scripts/validate-k8s.sh          (or: make k8s-check)
set -euo pipefail

repo_root=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo_root"
kubernetes_version=${KUBERNETES_VERSION:-1.30}

# checkov findings left as they are, for every object; each with the reason.
skipped_checks=(
  # "Image should use digest": `make images` builds local tags and there is no registry here to
  # give a digest. Pushing the images gives one: set it as newTag in k8s/base's `images:`.
  CKV_K8S_43
  # "Image Pull Policy should be Always": IfNotPresent on purpose, so images loaded onto the
  # nodes without a registry (kind load, k3s ctr images import) are used; with a registry, a new
  # tag or digest is pulled all the same.
  CKV_K8S_15
)

die() { echo "validate-k8s: $*" >&2; exit 1; }

for tool in kubernetes-validate checkov; do
  command -v "$tool" >/dev/null 2>&1 ||
    die "$tool is not on PATH: make k8s-check installs it (requirements-scan.txt, into .venv-scan)"
done
if ! command -v kubectl >/dev/null 2>&1; then
  scripts/host-packages.sh k8s
fi
# Debian bookworm's kubernetes-client is kubectl 1.20, whose kustomize (v2.0.3) cannot read k8s/.
kubectl_minor=$(kubectl version --client -o json 2>/dev/null |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["clientVersion"]["minor"].rstrip("+"))') ||
  die "cannot read the version of $(command -v kubectl)"
[[ $kubectl_minor -ge 27 ]] ||
  die "kubectl 1.${kubectl_minor} is too old to render k8s/ (its kustomize predates labels: and patches:): install kubectl 1.27 or later"

rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT

mapfile -t kustomizations < <(find k8s -name kustomization.yaml -printf '%h\n' | sort)
[[ ${#kustomizations[@]} -gt 0 ]] || die "no kustomization.yaml under k8s/"

for dir in "${kustomizations[@]}"; do
  name=${dir#k8s/}
  output="$rendered/${name//\//-}.yaml"
  kubectl kustomize "$dir" >"$output" || die "kubectl kustomize $dir failed (above)"
  kubernetes-validate --strict --quiet --kubernetes-version "$kubernetes_version" "$output" ||
    die "$dir: an object does not match the Kubernetes $kubernetes_version API (above)"
  echo "validate-k8s: $dir renders $(grep -c '^kind:' "$output") objects, valid for Kubernetes $kubernetes_version"
done

skip_list=$(IFS=,; echo "${skipped_checks[*]}")
checkov --skip-download --framework kubernetes --directory "$rendered" --compact --quiet \
  --skip-check "$skip_list" || die "checkov found problems in the rendered manifests (above)"
echo "validate-k8s: ${kustomizations[*]} pass checkov (skipped with reasons: ${skip_list})"
