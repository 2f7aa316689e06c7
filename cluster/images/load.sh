#!/usr/bin/env bash
# Load locally built images into the cluster KUBECONFIG points at.
#
#   KUBECONFIG=... cluster/images/load.sh localhost/model-server:0.1.0-abc123 localhost/metrics-server:v0.8.0
#
# This machine's cluster: imported into its containerd (`ctr -n k8s.io images import`), skipped when the
# cluster already has that exact image (same image ID). kind: `kind load image-archive`.
set -euo pipefail
# shellcheck source=cluster/lib.sh
source "$(dirname "$0")/../lib.sh"

target=$(cluster_target)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for image in "$@"; do
  id=$("$CLUSTER_DIR/images/build.sh" image-id "$image")
  if [[ $target == local ]]; then
    sock=$(recorded_state_dir)/containerd/containerd.sock
    have=$("$BIN/crictl" --runtime-endpoint "unix://$sock" inspecti -o go-template --template '{{.status.id}}' "$image" 2>/dev/null || true)
    if [[ ${have#sha256:} == "${id#sha256:}" ]]; then
      echo "$image: already in the cluster"
      continue
    fi
    "$CLUSTER_DIR/images/build.sh" archive "$image" "$tmp/image.tar"
    ctr --address "$sock" -n k8s.io images import "$tmp/image.tar" >/dev/null
    echo "$image: imported into the cluster's containerd"
  else
    "$CLUSTER_DIR/images/build.sh" archive "$image" "$tmp/image.tar"
    kind load image-archive "$tmp/image.tar" --name "${target#kind:}"
    echo "$image: loaded into kind cluster ${target#kind:}"
  fi
  rm -f "$tmp/image.tar"
done
