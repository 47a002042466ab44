{{- define "nova.name" -}}nova-collab{{- end }}

{{- define "nova.fullname" -}}
{{- printf "%s-%s" .Release.Name (include "nova.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "nova.labels" -}}
app.kubernetes.io/name: {{ include "nova.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "nova.selector" -}}
app.kubernetes.io/name: {{ include "nova.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: hub
{{- end }}

{{/* Longer than the hub's own shutdown bound plus the preStop wait, so the kubelet never
     kills a hub that is still storing its pending updates. */}}
{{- define "nova.terminationGrace" -}}
{{- add .Values.hub.shutdownTimeoutSeconds .Values.hub.preStopSleepSeconds 10 }}
{{- end }}

{{- define "nova.authSecret" -}}
{{- .Values.auth.existingSecret | default (printf "%s-auth" (include "nova.fullname" .)) }}
{{- end }}

{{- define "nova.storeSecret" -}}
{{- .Values.store.existingSecret | default (printf "%s-store" (include "nova.fullname" .)) }}
{{- end }}

{{- define "nova.redisUrl" -}}
{{- if .Values.redis.enabled -}}
redis://{{ include "nova.fullname" . }}-redis:6379/0
{{- else -}}
{{- required "redis.url (rediss://...) or redis.enabled=true is required: several hub pods share Redis" .Values.redis.url }}
{{- end }}
{{- end }}
