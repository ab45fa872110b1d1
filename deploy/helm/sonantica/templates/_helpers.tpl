{{- define "sonantica.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sonantica.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "sonantica.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "sonantica.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "sonantica.dataClaim" -}}
{{- .Values.persistence.existingClaim | default (printf "%s-data" (include "sonantica.fullname" .)) -}}
{{- end -}}

{{/* Environment shared by every container: config from the ConfigMap, secrets by key (optional ones may be absent). */}}
{{- define "sonantica.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "sonantica.fullname" . }}
env:
  - name: SONANTICA_DATABASE_URL
    valueFrom:
      secretKeyRef:
        name: {{ .Values.host.existingSecret }}
        key: database-url
  {{- range $key, $var := dict "redis-url" "SONANTICA_REDIS_URL" "api-token" "SONANTICA_API__TOKEN" "navidrome-password" "SONANTICA_NAVIDROME__PASSWORD" "jellyfin-api-key" "SONANTICA_JELLYFIN__API_KEY" "jellyfin-password" "SONANTICA_JELLYFIN__PASSWORD" "jellyfin-webhook-secret" "SONANTICA_JELLYFIN__WEBHOOK_SECRET" }}
  - name: {{ $var }}
    valueFrom:
      secretKeyRef:
        name: {{ $.Values.host.existingSecret }}
        key: {{ $key }}
        optional: true
  {{- end }}
  {{- with .Values.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{- define "sonantica.volumeMounts" -}}
volumeMounts:
  - name: library
    mountPath: {{ .Values.library.mountPath }}
    readOnly: true
    {{- with .Values.library.subPath }}
    subPath: {{ . }}
    {{- end }}
  - name: data
    mountPath: /data
  - name: tmp
    mountPath: /tmp
{{- end -}}

{{- define "sonantica.volumes" -}}
volumes:
  - name: library
    persistentVolumeClaim:
      claimName: {{ .Values.library.existingClaim }}
      readOnly: true
  - name: data
    persistentVolumeClaim:
      claimName: {{ include "sonantica.dataClaim" . }}
  # The root filesystem is read-only; numba's JIT cache and downloads in progress go to /tmp.
  - name: tmp
    emptyDir: {}
{{- end -}}

{{- define "sonantica.podSpec" -}}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
containers:
  - name: {{ .component }}
    image: {{ include "sonantica.image" .root }}
    imagePullPolicy: {{ .root.Values.image.pullPolicy }}
    args: {{ toJson .args }}
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities:
        drop: ["ALL"]
    {{- include "sonantica.env" .root | nindent 4 }}
    {{- include "sonantica.volumeMounts" .root | nindent 4 }}
    {{- with .extra }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- with .resources }}
    resources:
      {{- toYaml . | nindent 6 }}
    {{- end }}
{{- include "sonantica.volumes" .root | nindent 0 }}
{{- end -}}
