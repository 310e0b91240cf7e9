{{/* The name the selectors, pod labels and alerts use: never changes with the release. */}}
{{- define "imaging-db-mtls-operator.name" -}}
imaging-db-mtls-operator
{{- end }}

{{/* Names of the operator's objects: fixed (as in deploy/install.yaml) unless fullnameOverride is set. */}}
{{- define "imaging-db-mtls-operator.fullname" -}}
{{- .Values.fullnameOverride | default (include "imaging-db-mtls-operator.name" .) }}
{{- end }}

{{/* The labels Helm's own tooling expects, added to every object (the tests strip exactly these four). */}}
{{- define "imaging-db-mtls-operator.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* Labels of objects without a component (RBAC, ServiceAccount). */}}
{{- define "imaging-db-mtls-operator.labels" -}}
app.kubernetes.io/name: {{ include "imaging-db-mtls-operator.name" . }}
{{ include "imaging-db-mtls-operator.helmLabels" . }}
{{- end }}

{{/* Labels of the operator's own workload objects (Deployment, Service, PDB, NetworkPolicy). */}}
{{- define "imaging-db-mtls-operator.operatorLabels" -}}
app.kubernetes.io/name: {{ include "imaging-db-mtls-operator.name" . }}
app.kubernetes.io/component: operator
{{ include "imaging-db-mtls-operator.helmLabels" . }}
{{- end }}

{{- define "imaging-db-mtls-operator.monitoringLabels" -}}
app.kubernetes.io/name: {{ include "imaging-db-mtls-operator.name" . }}
app.kubernetes.io/component: monitoring
{{ include "imaging-db-mtls-operator.helmLabels" . }}
{{- end }}

{{- define "imaging-db-mtls-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "imaging-db-mtls-operator.name" . }}
{{- end }}

{{/* Where the CA keys live: the Role on Secrets goes there. */}}
{{- define "imaging-db-mtls-operator.caKeyNamespace" -}}
{{- .Values.caKeyNamespace | default .Release.Namespace }}
{{- end }}

{{- define "imaging-db-mtls-operator.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}
{{- end }}

{{/*
What the operator needs, and nothing more: every verb here is used (see the API audit in the integration suite).
One definition for the ClusterRole and the namespaced Roles, as deploy/rbac/cluster-role.yaml and
deploy/namespaced/watched-namespace/role.yaml carry the same rules.
*/}}
{{- define "imaging-db-mtls-operator.rules" -}}
# Its own resources: read (list+watch into its cache; it never GETs one), add/remove its finalizer, write status.
- apiGroups: ["mtls.imaging.dev"]
  resources: ["securedatabases", "imagingconnections"]
  verbs: ["list", "watch", "patch"]
- apiGroups: ["mtls.imaging.dev"]
  resources: ["securedatabases/status", "imagingconnections/status"]
  verbs: ["patch"]
# CA, server and client Secrets it owns (deleting only the staging and retired CA Secrets of a CA rotation);
# brought CA Secrets it only reads.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# The PostgreSQL ConfigMaps, the CAST connection .ini ConfigMaps and each database's ledger of issued certificates.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Mounting the server and client Secrets into the database and CAST Imaging workloads (watched, so that mounts a
# Helm upgrade or a GitOps sync removed are put back).
- apiGroups: ["apps"]
  resources: ["statefulsets", "deployments"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{- define "imaging-db-mtls-operator.subjects" -}}
- kind: ServiceAccount
  name: {{ include "imaging-db-mtls-operator.fullname" . }}
  namespace: {{ .Release.Namespace }}
{{- end }}

{{/*
The objects of a file copied from deploy/ (files/, kept byte-identical by scripts/sync-helm-chart.ts and the tests),
with Helm's labels added and, when given, their namespace set. Called with (list $ "files/<path>" "<namespace>").
Each document is parsed, so a copy that is not valid YAML fails the render instead of vanishing from it.
*/}}
{{- define "imaging-db-mtls-operator.shippedObjects" -}}
{{- $root := index . 0 }}
{{- $path := index . 1 }}
{{- $namespace := index . 2 }}
{{- $text := $root.Files.Get $path }}
{{- if not $text }}{{ fail (printf "the chart has no %s: run npx tsx scripts/sync-helm-chart.ts" $path) }}{{ end }}
{{- range $doc := regexSplit "(?m)^---[ \\t]*$" $text -1 }}
{{- $object := fromYaml $doc }}
{{- if hasKey $object "Error" }}{{ fail (printf "%s: %s" $path (get $object "Error")) }}{{ end }}
{{- if $object.kind }}
{{- $labels := merge (dict) ($object.metadata.labels | default dict) (include "imaging-db-mtls-operator.helmLabels" $root | fromYaml) }}
{{- $_ := set $object.metadata "labels" $labels }}
{{- if $namespace }}{{ $_ := set $object.metadata "namespace" $namespace }}{{ end }}
---
{{ toYaml $object }}
{{- end }}
{{- end }}
{{- end }}
