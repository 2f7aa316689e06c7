{{/*
Chart name, truncated to 63 characters (the DNS label limit of resource names).
*/}}
{{- define "model-server.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of every resource: the release name, plus the chart name unless the release name already
contains it (`helm install iris-classifier charts/model-server` gives `iris-classifier-model-server`,
`helm install model-server ...` gives `model-server`).
*/}}
{{- define "model-server.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The `helm.sh/chart` label: name and version, `+` (not allowed in label values) replaced.
*/}}
{{- define "model-server.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The image tag (default: appVersion) and the full reference; a digest pins the image exactly.
*/}}
{{- define "model-server.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "model-server.image" -}}
{{- $ref := printf "%s:%s" .Values.image.repository (include "model-server.imageTag" .) }}
{{- if .Values.image.digest }}
{{- $ref = printf "%s@%s" $ref .Values.image.digest }}
{{- end }}
{{- $ref }}
{{- end }}

{{/*
Selector labels: exactly name + instance. They are immutable on a Deployment, so they never change
between chart versions (a changed selector breaks `helm upgrade`).
*/}}
{{- define "model-server.selectorLabels" -}}
app.kubernetes.io/name: {{ include "model-server.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Model labels (the contract with monitoring, docs/design/contracts.md: the ServiceMonitor turns them
into the target labels `model` and `model_version`). The schema keeps both label-safe.
*/}}
{{- define "model-server.modelLabels" -}}
model-server.io/model: {{ .Values.model.name | quote }}
model-server.io/model-version: {{ .Values.model.version | quote }}
{{- end }}

{{/*
Standard labels of every resource.
*/}}
{{- define "model-server.labels" -}}
helm.sh/chart: {{ include "model-server.chart" . }}
{{ include "model-server.selectorLabels" . }}
app.kubernetes.io/version: {{ include "model-server.imageTag" . | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: server
{{ include "model-server.modelLabels" . }}
{{- end }}

{{/*
Labels of the `helm test` pod. Deliberately NOT both selector labels: a pod that matched the
Deployment's selector would be counted by its ReplicaSet and receive Service traffic.
*/}}
{{- define "model-server.testLabels" -}}
helm.sh/chart: {{ include "model-server.chart" . }}
app.kubernetes.io/name: {{ printf "%s-test" (include "model-server.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: test
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "model-server.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "model-server.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Where the server finds the bundle, per source. `url` and `oci` mount it at /models; `pvc` mounts the
bundle directory (subPath) there.
*/}}
{{- define "model-server.bundlePath" -}}
{{- if eq .Values.model.source.type "image" }}
{{- printf "/opt/model-server/bundles/%s" .Values.model.name }}
{{- else }}
{{- "/models" }}
{{- end }}
{{- end }}

{{/*
The bucket source's options for `model-server fetch --bucket` (called with .Values.model.source.bucket).
*/}}
{{- define "model-server.bucketArgs" -}}
{{- with .endpoint }}
- --endpoint
- {{ . | quote }}
{{- end }}
{{- with .region }}
- --region
- {{ . | quote }}
{{- end }}
{{- if not (kindIs "invalid" .pathStyle) }}
- {{ ternary "--path-style" "--virtual-hosted" .pathStyle }}
{{- end }}
{{- with .azureAccount }}
- --account
- {{ . | quote }}
{{- end }}
{{- if .anonymous }}
- --anonymous
{{- end }}
{{- end }}

{{/*
Where the bucket source's Secret is mounted with `credentials.mountAs: file` (env STORAGE_CREDENTIALS_DIR).
*/}}
{{- define "model-server.storageCredentialsDir" -}}
/var/run/secrets/model-server/storage
{{- end }}

{{/*
Termination grace period: explicit, or preStop + the server's drain time + 5 s of margin.
*/}}
{{- define "model-server.terminationGracePeriodSeconds" -}}
{{- $needed := add (int .Values.preStopSleepSeconds) (int .Values.server.shutdownGraceSeconds) }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $needed 5 }}
{{- else }}
{{- int .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/*
Path of the auth tokens file inside the container.
*/}}
{{- define "model-server.authTokensFile" -}}
{{- printf "/var/run/secrets/model-server/auth/%s" .Values.auth.secretKey }}
{{- end }}

{{/*
Cross-field checks the JSON schema cannot express, one helper per template that needs them, so that
rendering a single template (`helm template -s`, helm-unittest) checks its own values.
*/}}
{{- define "model-server.validateDeployment" -}}
{{- $needed := add (int .Values.preStopSleepSeconds) (int .Values.server.shutdownGraceSeconds) }}
{{- if not (kindIs "invalid" .Values.terminationGracePeriodSeconds) }}
{{- if le (int .Values.terminationGracePeriodSeconds) $needed }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be greater than preStopSleepSeconds + server.shutdownGraceSeconds (%d), or the kubelet kills the server before in-flight requests finish" (int .Values.terminationGracePeriodSeconds) $needed) }}
{{- end }}
{{- end }}
{{- $bucket := .Values.model.source.bucket }}
{{- if and (eq .Values.model.source.type "bucket") (regexMatch "^(az|azure)://" $bucket.uri) (not $bucket.azureAccount) }}
{{- fail (printf "model.source.bucket.uri %s needs model.source.bucket.azureAccount (or write https://<account>.blob.core.windows.net/<container>/<key>)" $bucket.uri) }}
{{- end }}
{{- if and (eq .Values.model.source.type "bucket") $bucket.anonymous $bucket.credentials.existingSecret }}
{{- fail "model.source.bucket: anonymous reads use no credentials; drop credentials.existingSecret or anonymous" }}
{{- end }}
{{- if and .Values.grpc.enabled (eq (int .Values.grpc.port) (int .Values.server.port)) }}
{{- fail (printf "grpc.port and server.port are both %d: give gRPC its own port, or set grpc.enabled=false" (int .Values.server.port)) }}
{{- end }}
{{- if and .Values.probes.readiness.grpc (not .Values.grpc.enabled) }}
{{- fail "probes.readiness.grpc needs grpc.enabled: the probe calls the gRPC health service" }}
{{- end }}
{{- if and (eq .Values.model.source.type "oci") (semverCompare "<1.31.0-0" .Capabilities.KubeVersion.Version) }}
{{- fail (printf "model.source.type=oci uses an image volume, which needs Kubernetes 1.31 or later (this cluster: %s)" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- end }}

{{- define "model-server.validateRollout" -}}
{{- if eq .Values.rollout.strategy "canary" }}
{{- if not .Values.monitoring.serviceMonitor.enabled }}
{{- fail "rollout.strategy=canary needs monitoring.serviceMonitor.enabled: the canary analysis reads the metrics Prometheus scrapes from the new pods" }}
{{- end }}
{{- $last := 0 }}
{{- range .Values.rollout.canary.steps }}
{{- if le (int .) $last }}
{{- fail (printf "rollout.canary.steps must rise (got %v): each step gives the new version more traffic" $.Values.rollout.canary.steps) }}
{{- end }}
{{- $last = int . }}
{{- end }}
{{- if and .Values.rollout.canary.gatewayAPI.enabled (not .Values.rollout.canary.gatewayAPI.parentRefs) }}
{{- fail "rollout.canary.gatewayAPI.enabled needs rollout.canary.gatewayAPI.parentRefs: the Gateway(s) whose traffic the HTTPRoute splits" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Whether the canary's traffic is split by an HTTPRoute (rollout.canary.gatewayAPI). */}}
{{- define "model-server.gatewayAPI" -}}
{{- if and (eq .Values.rollout.strategy "canary") .Values.rollout.canary.gatewayAPI.enabled }}true{{ end }}
{{- end }}

{{- define "model-server.validateAutoscaling" -}}
{{- $a := .Values.autoscaling }}
{{- if gt (int $a.minReplicas) (int $a.maxReplicas) }}
{{- fail (printf "autoscaling.minReplicas (%d) must not exceed autoscaling.maxReplicas (%d)" (int $a.minReplicas) (int $a.maxReplicas)) }}
{{- end }}
{{- if and (not $a.metrics) (kindIs "invalid" $a.targetCPUUtilizationPercentage) (not $a.requestsPerSecond.enabled) }}
{{- fail "autoscaling.enabled needs a metric: set autoscaling.targetCPUUtilizationPercentage, autoscaling.requestsPerSecond.enabled or autoscaling.metrics" }}
{{- end }}
{{- end }}

{{- define "model-server.validatePodDisruptionBudget" -}}
{{- $pdb := .Values.podDisruptionBudget }}
{{- $min := not (kindIs "invalid" $pdb.minAvailable) }}
{{- $max := not (kindIs "invalid" $pdb.maxUnavailable) }}
{{- if and $min $max }}
{{- fail "podDisruptionBudget: set only one of minAvailable and maxUnavailable (the other to null)" }}
{{- end }}
{{- if not (or $min $max) }}
{{- fail "podDisruptionBudget: set one of minAvailable and maxUnavailable" }}
{{- end }}
{{- end }}

{{/*
Server environment (the settings contract in service/model_server/settings.py). Optional settings left
null are not set, so the server's own default applies. Integers go through int64: Helm reads YAML
numbers as floats and would print 1048576 as 1.048576e+06.
*/}}
{{- define "model-server.chartEnv" -}}
- name: MODEL_BUNDLE
  value: {{ include "model-server.bundlePath" . | quote }}
- name: MODEL_NAME
  value: {{ .Values.model.name | quote }}
- name: MODEL_VERSION
  value: {{ .Values.model.version | quote }}
- name: HOST
  value: "0.0.0.0"
- name: PORT
  value: {{ int64 .Values.server.port | quote }}
- name: GRPC_ENABLED
  value: {{ .Values.grpc.enabled | toString | quote }}
- name: GRPC_PORT
  value: {{ int64 .Values.grpc.port | quote }}
- name: LOG_LEVEL
  value: {{ .Values.server.logLevel | quote }}
- name: SHUTDOWN_GRACE_SECONDS
  value: {{ int64 .Values.server.shutdownGraceSeconds | quote }}
- name: RETURN_PROBABILITIES
  value: {{ .Values.server.returnProbabilities | toString | quote }}
- name: ALLOW_SKLEARN_VERSION_MISMATCH
  value: {{ .Values.server.allowSklearnVersionMismatch | toString | quote }}
- name: ARRAY_INPUT
  value: {{ .Values.server.arrayInput | toString | quote }}
- name: LOG_REQUEST_BODIES
  value: {{ .Values.server.logRequestBodies | toString | quote }}
{{- with .Values.server.trustedTypes }}
- name: TRUSTED_TYPES
  value: {{ join "," . | quote }}
{{- end }}
{{- range $env, $value := dict "MAX_BODY_BYTES" .Values.server.maxBodyBytes "MAX_REQUEST_ROWS" .Values.server.maxRequestRows "MAX_IN_FLIGHT" .Values.server.maxInFlight "DRIFT_WINDOW_ROWS" .Values.server.driftWindowRows "MAX_ARTIFACT_UNPACKED_BYTES" .Values.server.maxArtifactUnpackedBytes "BATCH_MAX_ROWS" .Values.batching.maxRows "BATCH_QUEUE_ROWS" .Values.batching.queueRows "GRPC_MAX_MESSAGE_BYTES" .Values.grpc.maxMessageBytes }}
{{- if not (kindIs "invalid" $value) }}
- name: {{ $env }}
  value: {{ int64 $value | quote }}
{{- end }}
{{- end }}
{{- range $env, $value := dict "REQUEST_TIMEOUT_SECONDS" .Values.server.requestTimeoutSeconds "BATCH_MAX_WAIT_MS" .Values.batching.maxWaitMs }}
{{- if not (kindIs "invalid" $value) }}
- name: {{ $env }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}
- name: BATCHING
  value: {{ ternary "on" "off" .Values.batching.enabled | quote }}
{{- if .Values.auth.enabled }}
- name: AUTH_TOKENS_FILE
  value: {{ include "model-server.authTokensFile" . | quote }}
{{- end }}
{{- end }}

{{/*
The container env: the chart's settings, minus any that server.extraEnv sets itself (extraEnv wins; a
duplicated name would make server-side apply and strategic merge patches fail), then extraEnv.
*/}}
{{- define "model-server.env" -}}
{{- $extra := .Values.server.extraEnv | default list }}
{{- $overridden := list }}
{{- range $extra }}{{ $overridden = append $overridden .name }}{{ end }}
{{- $env := list }}
{{- range (include "model-server.chartEnv" . | fromYamlArray) }}
{{- if not (has .name $overridden) }}{{ $env = append $env . }}{{ end }}
{{- end }}
{{- concat $env $extra | toYaml }}
{{- end }}

{{/*
Labels of the ServiceMonitor: the standard labels, the `release` label kube-prometheus-stack selects
on, then its extra labels. Call with (list $ extraLabels fixedLabels); on a clash the
standard and fixed labels win.
*/}}
{{- define "model-server.monitoringLabels" -}}
{{- $root := index . 0 }}
{{- $labels := include "model-server.labels" $root | fromYaml }}
{{- $labels = merge $labels (index . 2) }}
{{- with $root.Values.monitoring.releaseLabel }}
{{- $labels = merge $labels (dict "release" .) }}
{{- end }}
{{- merge $labels (index . 1) | toYaml }}
{{- end }}

{{/*
A Service the Rollout points at one version's pods (rollout.canary.gatewayAPI): `stable` or `canary`,
as (list . role). Argo Rollouts adds the pod-template-hash to its selector. Labelled with its role so
that the ServiceMonitor, which scrapes through the release's own Service, leaves it out (each pod
scraped once).
*/}}
{{- define "model-server.trafficService" -}}
{{- $root := index . 0 }}
{{- $role := index . 1 }}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "model-server.fullname" $root }}-{{ $role }}
  labels:
    {{- include "model-server.labels" $root | nindent 4 }}
    model-server.io/traffic: {{ $role }}
spec:
  type: ClusterIP
  selector:
    {{- include "model-server.selectorLabels" $root | nindent 4 }}
  ports:
    - name: http
      port: {{ $root.Values.service.port }}
      targetPort: http
      protocol: TCP
{{- end }}
