#!/usr/bin/env bash
# Install Argo Rollouts into the cluster KUBECONFIG points at, as a user would from its release: the
# module's own manifests/install.yaml (CRDs, controller, RBAC) with the image `make images` built, and
# the traffic router plugin that image carries (cluster/images/httproute-plugin) registered in its
# argo-rollouts-config. Then the Gateway API CRDs (standard channel, from their module) that the chart's
# HTTPRoute split needs; no Gateway controller runs. Server-side apply, so a second run changes nothing;
# waits until the controller is ready.
set -euo pipefail
# shellcheck source=cluster/lib.sh
source "$(dirname "$0")/lib.sh"

: "${PY:?}" "${ARGO_ROLLOUTS_MODULE:?}" "${ARGO_ROLLOUTS_VERSION:?}" "${ARGOCD_GO_TOOLCHAIN:?}" "${ARGO_ROLLOUTS_IMAGE:?}"
: "${GATEWAY_API_MODULE:?}" "${GATEWAY_API_VERSION:?}"
kubectl() { "$BIN/kubectl" "$@"; }

module_dir() {
  GOTOOLCHAIN=$ARGOCD_GO_TOOLCHAIN GOFLAGS=-mod=mod "$(dirname "$0")/module-dir.sh" "$1"
}
install=$(module_dir "$ARGO_ROLLOUTS_MODULE@$ARGO_ROLLOUTS_VERSION")/manifests/install.yaml
[[ -f $install ]] || { echo "addons-rollouts.sh: no $install" >&2; exit 1; }
gateway_crds=$(module_dir "$GATEWAY_API_MODULE@$GATEWAY_API_VERSION")/config/crd/standard
[[ -d $gateway_crds ]] || { echo "addons-rollouts.sh: no $gateway_crds" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" - "$install" "$tmp/rollouts.yaml" <<'PYEOF'
import os, sys, yaml
install, out = sys.argv[1:]
docs = [d for d in yaml.safe_load_all(open(install)) if d]
swapped = configured = 0
for doc in docs:
    if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "argo-rollouts-config":
        # The controller copies a file:// plugin into its plugin-bin volume at start.
        doc["data"] = {
            "trafficRouterPlugins": yaml.safe_dump(
                [{"name": "model-server/httproute-weights", "location": "file:///bin/httproute-plugin"}]
            )
        }
        configured += 1
    if doc["kind"] != "Deployment":
        continue
    for container in doc["spec"]["template"]["spec"]["containers"]:
        container["image"] = os.environ["ARGO_ROLLOUTS_IMAGE"]
        # Upstream pulls Always; this image exists only in the node's store.
        container["imagePullPolicy"] = "IfNotPresent"
        # Plugins go to ./plugin-bin, upstream's volume at /home/argo-rollouts/plugin-bin; upstream's
        # image starts there, this one (FROM scratch) in /.
        container["workingDir"] = "/home/argo-rollouts"
        swapped += 1
assert swapped == 1, f"{swapped} controller containers in {install}"
assert configured == 1, f"{configured} argo-rollouts-config ConfigMaps in {install}"
yaml.safe_dump_all(docs, open(out, "w"), sort_keys=False)
PYEOF

kubectl create namespace argo-rollouts --dry-run=client -o yaml | kubectl apply -f - >/dev/null
# Server-side: the Rollout CRD is larger than the annotation client-side apply would write.
kubectl apply --server-side --force-conflicts -n argo-rollouts -f "$tmp/rollouts.yaml" >/dev/null
kubectl apply --server-side --force-conflicts -f "$(dirname "$0")/addons/argo-rollouts" >/dev/null
kubectl apply --server-side --force-conflicts -f "$gateway_crds" >/dev/null
kubectl -n argo-rollouts rollout status deployment/argo-rollouts --timeout 180s >/dev/null
echo "argo-rollouts: Argo Rollouts $ARGO_ROLLOUTS_VERSION ready, Gateway API $GATEWAY_API_VERSION CRDs installed"
