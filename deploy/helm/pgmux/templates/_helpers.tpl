{{- define "pgmux.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "pgmux.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pgmux.labels" -}}
{{ include "pgmux.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The configuration file: values.config, with auth_file pointing at the mounted user Secret. */}}
{{- define "pgmux.config" -}}
{{- $config := deepCopy .Values.config -}}
{{- if .Values.users.existingSecret -}}
{{- $_ := set $config.pgmux "auth_file" (printf "/etc/pgmux/users/%s" .Values.users.key) -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}
