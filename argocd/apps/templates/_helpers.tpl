{{/* The Git source every Application here reads: fail the render rather than point at nothing. */}}
{{- define "apps.repoURL" -}}
{{- required "repoURL is set by the root Application (argocd/bootstrap/root-application.yaml)" .Values.repoURL -}}
{{- end }}

{{- define "apps.targetRevision" -}}
{{- required "targetRevision is set by the root Application (argocd/bootstrap/root-application.yaml)" .Values.targetRevision -}}
{{- end }}

{{/* Labels on every object of this chart, so `kubectl get -l` finds the platform's Argo CD objects. */}}
{{- define "apps.labels" -}}
app.kubernetes.io/part-of: model-serving-platform
app.kubernetes.io/managed-by: argocd
{{- end }}
