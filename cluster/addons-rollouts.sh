#!/usr/bin/env bash
# Install Argo Rollouts into the cluster KUBECONFIG points at, as a user would from its release: the
# module's own manifests/install.yaml (CRDs, controller, RBAC) with the image `make images` built. Server-side
# apply, so a second run changes nothing; waits until the controller is ready.
set -euo pipefail
# shellcheck source=cluster/lib.sh
source "$(dirname "$0")/lib.sh"

: "${PY:?}" "${ARGO_ROLLOUTS_MODULE:?}" "${ARGO_ROLLOUTS_VERSION:?}" "${ARGOCD_GO_TOOLCHAIN:?}" "${ARGO_ROLLOUTS_IMAGE:?}"
kubectl() { "$BIN/kubectl" "$@"; }

module_dir=$(GOTOOLCHAIN=$ARGOCD_GO_TOOLCHAIN GOFLAGS=-mod=mod go mod download -json "$ARGO_ROLLOUTS_MODULE@$ARGO_ROLLOUTS_VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
install=$module_dir/manifests/install.yaml
[[ -f $install ]] || { echo "addons-rollouts.sh: no $install" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" - "$install" "$tmp/rollouts.yaml" <<'PYEOF'
import os, sys, yaml
install, out = sys.argv[1:]
docs = [d for d in yaml.safe_load_all(open(install)) if d]
swapped = 0
for doc in docs:
    if doc["kind"] != "Deployment":
        continue
    for container in doc["spec"]["template"]["spec"]["containers"]:
        container["image"] = os.environ["ARGO_ROLLOUTS_IMAGE"]
        # Upstream pulls Always; this image exists only in the node's store.
        container["imagePullPolicy"] = "IfNotPresent"
        swapped += 1
assert swapped == 1, f"{swapped} controller containers in {install}"
yaml.safe_dump_all(docs, open(out, "w"), sort_keys=False)
PYEOF

kubectl create namespace argo-rollouts --dry-run=client -o yaml | kubectl apply -f - >/dev/null
# Server-side: the Rollout CRD is larger than the annotation client-side apply would write.
kubectl apply --server-side --force-conflicts -n argo-rollouts -f "$tmp/rollouts.yaml" >/dev/null
kubectl -n argo-rollouts rollout status deployment/argo-rollouts --timeout 180s >/dev/null
echo "argo-rollouts: Argo Rollouts $ARGO_ROLLOUTS_VERSION ready"
