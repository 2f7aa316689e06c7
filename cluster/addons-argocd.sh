#!/usr/bin/env bash
# Install Argo CD into the cluster KUBECONFIG points at, as a user would from its release, with the local
# images: the module's own manifests/core-install.yaml (application controller, ApplicationSet
# controller, repo server, Redis; no API server, UI or SSO: the tests and the docs use kubectl and the
# argocd CLI in --core mode), images swapped for those `make images` built, the settings of
# cluster/addons/argocd/settings.yaml merged in, and the `default` AppProject its API server would have
# created (cluster/addons/argocd/default-project.yaml). Server-side apply, so a second run changes nothing;
# waits until every component is ready.
set -euo pipefail
# shellcheck source=cluster/lib.sh
source "$(dirname "$0")/lib.sh"

: "${PY:?}" "${ARGOCD_MODULE:?}" "${ARGOCD_VERSION:?}" "${ARGOCD_GO_TOOLCHAIN:?}" "${ARGOCD_IMAGE:?}" "${ARGOCD_REDIS_IMAGE:?}"
kubectl() { "$BIN/kubectl" "$@"; }

module_dir=$(GOTOOLCHAIN=$ARGOCD_GO_TOOLCHAIN GOFLAGS=-mod=mod "$(dirname "$0")/module-dir.sh" \
  "$ARGOCD_MODULE@$ARGOCD_VERSION")
install=$module_dir/manifests/core-install.yaml
[[ -f $install ]] || { echo "addons-argocd.sh: no $install" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" - "$install" "$CLUSTER_DIR/addons/argocd/settings.yaml" "$tmp/argocd.yaml" <<'PYEOF'
import os, sys, yaml
install, settings_file, out = sys.argv[1:]
settings = yaml.safe_load(open(settings_file))
docs = [d for d in yaml.safe_load_all(open(install)) if d]
images = {"argocd": os.environ["ARGOCD_IMAGE"], "redis": os.environ["ARGOCD_REDIS_IMAGE"]}
swapped = 0
for doc in docs:
    name = doc["metadata"]["name"]
    if doc["kind"] == "ConfigMap" and name in settings:
        doc["data"] = {**(doc.get("data") or {}), **settings[name]}
    if doc["kind"] not in ("Deployment", "StatefulSet"):
        continue
    spec = doc["spec"]["template"]["spec"]
    for container in spec.get("initContainers", []) + spec["containers"]:
        repository = container["image"].rsplit(":", 1)[0].rsplit("/", 1)[-1]
        container["image"] = images[repository]
        # Upstream pulls Always; these images exist only in the node's store.
        container["imagePullPolicy"] = "IfNotPresent"
        swapped += 1
        # No GnuPG keyring in the local image: commit signature verification is off (a project that
        # requires signed commits needs it on, with the keys in argocd-gpg-keys-cm).
        if repository == "argocd":
            container.setdefault("env", []).append({"name": "ARGOCD_GPG_ENABLED", "value": "false"})
assert swapped >= 6, f"only {swapped} containers found in {install}"
yaml.safe_dump_all(docs, open(out, "w"), sort_keys=False)
PYEOF

kubectl create namespace argocd --dry-run=client -o yaml | kubectl apply -f - >/dev/null
# Server-side: the Application CRD is larger than the annotation client-side apply would write.
kubectl apply --server-side --force-conflicts -n argocd -f "$tmp/argocd.yaml" >/dev/null
for d in argocd-redis argocd-repo-server argocd-applicationset-controller; do
  kubectl -n argocd rollout status "deployment/$d" --timeout 180s >/dev/null
done
kubectl -n argocd rollout status statefulset/argocd-application-controller --timeout 180s >/dev/null
kubectl create -f "$CLUSTER_DIR/addons/argocd/default-project.yaml" 2>/dev/null ||
  kubectl get -n argocd appproject default >/dev/null
echo "argocd: Argo CD $ARGOCD_VERSION (core install) ready"
