{{/*
Chart name, truncated to 63 characters (the DNS label limit of resource names).
*/}}
{{- define "platform-monitoring.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of every resource: the release name, plus the chart name unless the release name already
contains it (Argo CD's release `platform-monitoring` gives `platform-monitoring`).
*/}}
{{- define "platform-monitoring.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
Labels of every resource: the standard labels, the `release` label kube-prometheus-stack selects on,
then the resource's extra labels. Call with (list $ extraLabels fixedLabels); on a clash the standard
and fixed labels win.
*/}}
{{- define "platform-monitoring.labels" -}}
{{- $root := index . 0 }}
{{- $labels := dict
  "helm.sh/chart" (printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-")
  "app.kubernetes.io/name" (include "platform-monitoring.name" $root)
  "app.kubernetes.io/instance" $root.Release.Name
  "app.kubernetes.io/version" $root.Chart.AppVersion
  "app.kubernetes.io/managed-by" $root.Release.Service
  "app.kubernetes.io/part-of" "model-serving-platform" }}
{{- $labels = merge $labels (index . 2) }}
{{- with $root.Values.releaseLabel }}
{{- $labels = merge $labels (dict "release" .) }}
{{- end }}
{{- merge $labels (index . 1) | toYaml }}
{{- end }}
