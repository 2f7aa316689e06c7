#!/usr/bin/env bash
# Install the chart on a kind cluster once per install scenario, test it, predict, uninstall.
#
#   IMAGE=model-server:e2e HELM=.tools/bin/helm .github/scripts/kind-e2e.sh
#
# Every charts/model-server/ci/*-values.yaml runs (the `url` one against an in-cluster file server),
# except a scenario whose manifests need an API the cluster does not serve (the Prometheus Operator
# CRDs of the monitoring scenario: kind has none); a skipped scenario is named in the log. The image is
# the one `kind load` put on the node.
set -euo pipefail

helm=${HELM:-helm}
image=${IMAGE:?IMAGE is the image loaded into kind, e.g. model-server:e2e}
chart=charts/model-server
image_args=(--set "image.repository=${image%:*}" --set "image.tag=${image##*:}" --set image.pullPolicy=Never)
served=$(kubectl api-versions)
ran=0

# The `url` scenario fetches the demo bundle's archive from bundles.model-bundles.svc:8080: serve it
# from the same image (`model-server archive` writes the byte-reproducible archive the scenario pins).
kubectl apply -f - <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: model-bundles
---
apiVersion: v1
kind: Pod
metadata:
  name: bundles
  namespace: model-bundles
  labels:
    app: bundles
spec:
  containers:
    - name: http
      image: ${image}
      imagePullPolicy: Never
      command:
        - sh
        - -c
        - model-server archive /opt/model-server/bundles/iris-classifier /tmp/iris-classifier-1.0.0.tar.gz
          && exec python -m http.server --directory /tmp 8080
      ports:
        - containerPort: 8080
      readinessProbe:
        httpGet:
          path: /iris-classifier-1.0.0.tar.gz
          port: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: bundles
  namespace: model-bundles
spec:
  selector:
    app: bundles
  ports:
    - port: 8080
YAML
kubectl wait --namespace model-bundles --for=condition=Ready pod/bundles --timeout=3m

for scenario in "$chart"/ci/*-values.yaml; do
  name=$(basename "$scenario" -values.yaml)
  release=e2e-$name
  namespace=e2e-$name
  rendered=$("$helm" template "$release" "$chart" --namespace "$namespace" -f "$scenario" "${image_args[@]}")
  missing=$(grep -E '^apiVersion: ' <<<"$rendered" | awk '{print $2}' | sort -u | grep -vxF -f <(echo "$served") || true)
  if [[ -n $missing ]]; then
    echo "::notice::skipping scenario $name: the cluster does not serve $(echo "$missing" | tr '\n' ' ')"
    continue
  fi
  model=$(grep -m1 -E '^\s+model-server.io/model: ' <<<"$rendered" | awk '{print $2}' | tr -d '"')

  echo "::group::scenario $name (model $model)"
  "$helm" install "$release" "$chart" --namespace "$namespace" --create-namespace -f "$scenario" \
    "${image_args[@]}" --wait --timeout 5m
  "$helm" test "$release" --namespace "$namespace" --logs --timeout 3m

  service=$(kubectl get service --namespace "$namespace" -l "app.kubernetes.io/instance=$release" \
    -o jsonpath='{.items[0].metadata.name}')
  port=$(kubectl get service --namespace "$namespace" "$service" -o jsonpath='{.spec.ports[0].port}')
  kubectl port-forward --namespace "$namespace" "service/$service" 18000:"$port" >/tmp/port-forward.log 2>&1 &
  forward=$!
  for _ in $(seq 30); do curl -sf http://127.0.0.1:18000/readyz >/dev/null && break; sleep 1; done
  python3 .github/scripts/predict.py http://127.0.0.1:18000 "$model"
  kill "$forward"

  "$helm" uninstall "$release" --namespace "$namespace" --wait --timeout 2m
  kubectl delete namespace "$namespace" --wait=true
  echo "::endgroup::"
  ran=$((ran + 1))
done

if [[ $ran -eq 0 ]]; then
  echo "error: no scenario could run on this cluster" >&2
  exit 1
fi
echo "$ran scenario(s) installed, tested, predicted and uninstalled"
