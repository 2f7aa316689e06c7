#!/usr/bin/env bash
# Install the cluster add-ons the e2e suite needs, when absent, into the cluster KUBECONFIG points at:
# metrics-server (cluster/addons/metrics-server.yaml). Waits until its API answers.
set -euo pipefail
# shellcheck source=cluster/lib.sh
source "$(dirname "$0")/lib.sh"

: "${METRICS_SERVER_IMAGE:?}"
kubectl() { "$BIN/kubectl" "$@"; }

available() {
  [[ $(kubectl get apiservice v1beta1.metrics.k8s.io \
    -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null) == True ]] &&
    [[ $(kubectl -n kube-system get deploy metrics-server -o jsonpath='{.spec.template.spec.containers[0].image}') == "$METRICS_SERVER_IMAGE" ]]
}

if available; then
  echo "metrics-server: installed and available"
  exit 0
fi
# This machine's kubelet serves a certificate from the cluster CA, which every pod is given; kind's
# kubelets serve self-signed ones.
# shellcheck disable=SC2034 # read by render (cluster/lib.sh) as @KUBELET_TLS_ARG@
if [[ $(cluster_target) == local ]]; then
  KUBELET_TLS_ARG=--kubelet-certificate-authority=/var/run/secrets/kubernetes.io/serviceaccount/ca.crt
else
  KUBELET_TLS_ARG=--kubelet-insecure-tls
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
render "$CLUSTER_DIR/addons/metrics-server.yaml" "$tmp/metrics-server.yaml"
kubectl apply --server-side -f "$tmp/metrics-server.yaml"
kubectl -n kube-system rollout status deployment/metrics-server --timeout 180s
wait_for 120 "the metrics.k8s.io API to be available" available
echo "metrics-server: available"
