#!/usr/bin/env bash
# The cluster's certificates and kubeconfigs, under $STATE_DIR/pki and $STATE_DIR (openssl only).
#
# Kept across `make cluster-down` (a restart reuses them); made anew when missing or within a day of
# expiry. One CA signs every client and serving certificate; a second one (front-proxy) signs the
# identity the apiserver presents to aggregated APIs such as metrics-server, as Kubernetes requires.
set -euo pipefail
# shellcheck source=cluster/settings.sh
source "$(dirname "$0")/settings.sh"

pki=$STATE_DIR/pki
mkdir -p "$pki"
cd "$pki"
# A year: the cluster is a development one, made anew whenever its certificates near expiry.
days=365

ca() { # NAME CN
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.crt" -days "$days" \
    -subj "/CN=$2" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
}

cert() { # NAME CA SUBJECT USAGE [SANS]
  local name=$1 signer=$2 subject=$3 usage=$4 sans=${5:-}
  openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subject" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    [[ -z $sans ]] || echo "subjectAltName=$sans"
  } >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA "$signer.crt" -CAkey "$signer.key" -CAcreateserial \
    -out "$name.crt" -days "$days" -extfile "$name.ext" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

kubeconfig() { # FILE USER CERT
  local file=$1 user=$2 crt=$3
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: $CLUSTER_NAME
    cluster:
      server: https://$NODE_IP:$APISERVER_PORT
      certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
  - name: $user
    user:
      client-certificate-data: $(base64 -w0 <"$pki/$crt.crt")
      client-key-data: $(base64 -w0 <"$pki/$crt.key")
contexts:
  - name: $CLUSTER_NAME
    context:
      cluster: $CLUSTER_NAME
      user: $user
current-context: $CLUSTER_NAME
EOF
  chmod 600 "$file"
}

fresh() {
  local f
  for f in ca front-proxy-ca apiserver apiserver-kubelet-client front-proxy-client admin \
    controller-manager scheduler kube-proxy kubelet kubelet-server; do
    [[ -f $f.crt && -f $f.key ]] && openssl x509 -checkend 86400 -noout -in "$f.crt" >/dev/null || return 1
  done
  [[ -f sa.key && -f sa.pub ]]
}

generate() {
  rm -f ./*.crt ./*.key ./*.srl ./*.pub
  ca ca "$CLUSTER_NAME-ca"
  ca front-proxy-ca "$CLUSTER_NAME-front-proxy-ca"
  cert apiserver ca "/CN=kube-apiserver" serverAuth \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN,DNS:localhost,IP:$KUBERNETES_SERVICE_IP,IP:$NODE_IP,IP:127.0.0.1"
  # The apiserver's identity towards kubelets (logs, exec, port-forward): a cluster admin.
  cert apiserver-kubelet-client ca "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
  cert front-proxy-client front-proxy-ca "/CN=front-proxy-client" clientAuth
  cert admin ca "/O=system:masters/CN=$CLUSTER_NAME-admin" clientAuth
  cert controller-manager ca "/CN=system:kube-controller-manager" clientAuth
  cert scheduler ca "/CN=system:kube-scheduler" clientAuth
  cert kube-proxy ca "/CN=system:kube-proxy" clientAuth
  cert kubelet ca "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
  # Signed by the cluster CA, so metrics-server can verify the kubelet with the CA every pod is given.
  cert kubelet-server ca "/CN=$NODE_NAME" serverAuth "DNS:$NODE_NAME,IP:$NODE_IP"
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  chmod 600 ./*.key
  echo "certificates written to $pki"
}

if fresh; then
  echo "certificates are current"
else
  generate
fi
# The kubeconfigs every time: cluster-down removes the admin one, so that nothing is sent to the node
# address while no cluster holds it.
kubeconfig "$KUBECONFIG_PATH" "$CLUSTER_NAME-admin" admin
kubeconfig "$pki/controller-manager.kubeconfig" system:kube-controller-manager controller-manager
kubeconfig "$pki/scheduler.kubeconfig" system:kube-scheduler scheduler
kubeconfig "$pki/kube-proxy.kubeconfig" system:kube-proxy kube-proxy
kubeconfig "$pki/kubelet.kubeconfig" "system:node:$NODE_NAME" kubelet
