#!/usr/bin/env bash
# Fail at once, saying why, unless a cluster answers at KUBECONFIG (`make e2e` runs this first).
#
# A kubeconfig of this machine's cluster outlives `make cluster-down`: its node address is then on no
# interface, and a request to it would be routed off the machine. So for that cluster the address is
# checked first, and nothing is sent unless the cluster is up.
set -euo pipefail
# shellcheck source=cluster/lib.sh
source "$(dirname "$0")/lib.sh"

if [[ -z ${KUBECONFIG:-} ]]; then
  echo "make e2e: no cluster: run \`make cluster\` first, or set KUBECONFIG to a cluster's kubeconfig" >&2
  exit 1
fi
server=$("$BIN/kubectl" config view --minify -o jsonpath='{.clusters[0].cluster.server}')
if [[ $server == "https://$NODE_IP:$APISERVER_PORT" ]] && ! ip -4 addr show dev lo | grep -q " $NODE_IP/32 "; then
  echo "make e2e: the local cluster ($server) is not running: run \`make cluster\`" >&2
  exit 1
fi
if ! "$BIN/kubectl" --request-timeout 10s get --raw /readyz >/dev/null; then
  echo "make e2e: no cluster answers at KUBECONFIG=$KUBECONFIG ($server): run \`make cluster\` (or check that cluster)" >&2
  exit 1
fi
