{{- define "sonantica.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The release's base name, at most 52 characters: every object appends at most 11 ("-scheduler", "-keda-auth"),
so no name passes the 63-character limit of a DNS label.
*/}}
{{- define "sonantica.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "sonantica.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "<fullname>-<component>" from (dict "root" $ "component" "api"). */}}
{{- define "sonantica.componentName" -}}
{{- printf "%s-%s" (include "sonantica.fullname" .root) .component -}}
{{- end -}}

{{- define "sonantica.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sonantica.labels" -}}
helm.sh/chart: {{ include "sonantica.chart" . }}
app.kubernetes.io/name: {{ include "sonantica.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "api"). */}}
{{- define "sonantica.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sonantica.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Metadata of a component's object: (dict "root" $ "component" "api"). */}}
{{- define "sonantica.metadata" -}}
name: {{ include "sonantica.componentName" . }}
namespace: {{ .root.Release.Namespace }}
labels:
  {{- include "sonantica.labels" .root | nindent 2 }}
  app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "sonantica.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "sonantica.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "sonantica.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{- define "sonantica.dataClaim" -}}
{{- .Values.persistence.existingClaim | default (printf "%s-data" (include "sonantica.fullname" .)) -}}
{{- end -}}

{{/* The chart's own Secret: the generated API token and the bundled Redis password. */}}
{{- define "sonantica.secretName" -}}
{{- printf "%s-auth" (include "sonantica.fullname" .) -}}
{{- end -}}

{{- define "sonantica.tokenSecret" -}}
{{- .Values.apiToken.existingSecret | default (include "sonantica.secretName" .) -}}
{{- end -}}

{{- define "sonantica.redisHost" -}}
{{- printf "%s-redis" (include "sonantica.fullname" .) -}}
{{- end -}}

{{/* Whether the chart renders its own Secret (a generated API token and/or the bundled Redis password). */}}
{{- define "sonantica.ownSecret" -}}
{{- if or (not .Values.apiToken.existingSecret) .Values.redis.bundled }}true{{ end -}}
{{- end -}}

{{/* The settings that hold no secret; api, workers and the scheduler read them from the ConfigMap. */}}
{{- define "sonantica.config" -}}
SONANTICA_HOST: {{ .Values.host.kind | quote }}
{{- if eq .Values.host.kind "navidrome" }}
SONANTICA_NAVIDROME__URL: {{ .Values.host.url | quote }}
SONANTICA_NAVIDROME__USERNAME: {{ .Values.host.username | quote }}
{{- else }}
SONANTICA_JELLYFIN__URL: {{ .Values.host.url | quote }}
{{- with .Values.host.username }}
SONANTICA_JELLYFIN__USERNAME: {{ . | quote }}
{{- end }}
{{- end }}
{{- if and (not .Values.redis.bundled) .Values.redis.url }}
SONANTICA_REDIS_URL: {{ .Values.redis.url | quote }}
{{- end }}
SONANTICA_REDIS__KEY_PREFIX: {{ .Values.redis.keyPrefix | quote }}
SONANTICA_DATA_DIR: "/data"
SONANTICA_LIBRARY_DIR: {{ .Values.library.mountPath | quote }}
SONANTICA_PATH_MAP: {{ .Values.pathMap | quote }}
SONANTICA_LOG_FORMAT: "json"
NUMBA_CACHE_DIR: "/tmp/numba"
SONANTICA_API__BIND_HOST: "0.0.0.0"
SONANTICA_API__PORT: {{ .Values.api.port | quote }}
SONANTICA_EMBEDDING__MODEL: {{ .Values.embedding.model | quote }}
SONANTICA_EMBEDDING__FALLBACK: {{ .Values.embedding.fallback | quote }}
{{- end -}}

{{- define "sonantica.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end -}}

{{/* Secrets as environment: database and host credentials from host.existingSecret, the token, Redis. */}}
{{- define "sonantica.env" -}}
{{- $user := .Values.host.existingSecret -}}
{{- include "sonantica.secretEnv" (dict "name" "SONANTICA_DATABASE_URL" "secret" $user "key" "database-url") }}
{{- range $key, $var := dict "navidrome-password" "SONANTICA_NAVIDROME__PASSWORD" "jellyfin-api-key" "SONANTICA_JELLYFIN__API_KEY" "jellyfin-password" "SONANTICA_JELLYFIN__PASSWORD" "jellyfin-webhook-secret" "SONANTICA_JELLYFIN__WEBHOOK_SECRET" }}
{{ include "sonantica.secretEnv" (dict "name" $var "secret" $user "key" $key "optional" true) }}
{{- end }}
{{ include "sonantica.secretEnv" (dict "name" "SONANTICA_API__TOKEN" "secret" (include "sonantica.tokenSecret" .) "key" "api-token") }}
{{- if .Values.redis.bundled }}
{{ include "sonantica.secretEnv" (dict "name" "REDIS_PASSWORD" "secret" (include "sonantica.secretName" .) "key" "redis-password") }}
- name: SONANTICA_REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s:6379/0" (include "sonantica.redisHost" .) | quote }}
{{- else if .Values.redis.urlFromSecret }}
{{ include "sonantica.secretEnv" (dict "name" "SONANTICA_REDIS_URL" "secret" $user "key" "redis-url") }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Scheduling and pod-level fields shared by every workload: (dict "root" $ "spec" .Values.api). */}}
{{- define "sonantica.podCommon" -}}
{{- $root := .root -}}
serviceAccountName: {{ .serviceAccountName | default (include "sonantica.serviceAccountName" $root) }}
automountServiceAccountToken: false
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- with .spec.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .spec.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .spec.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .spec.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .spec.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Pod template metadata: selector labels, extra labels and annotations, and the config checksum. */}}
{{- define "sonantica.podMetadata" -}}
labels:
  {{- include "sonantica.selectorLabels" . | nindent 2 }}
  {{- with .root.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  checksum/config: {{ include "sonantica.config" .root | sha256sum }}
  {{- with .root.Values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{/*
The pod spec of api, workers and the scheduler: (dict "root" $ "component" "api" "args" (list "serve")
"spec" .Values.api "extra" (dict ...) "image" "...").
*/}}
{{- define "sonantica.podSpec" -}}
{{- $root := .root -}}
{{- include "sonantica.podCommon" . }}
{{- with .spec.terminationGracePeriodSeconds }}
terminationGracePeriodSeconds: {{ . }}
{{- end }}
{{- with .runtimeClassName }}
runtimeClassName: {{ . }}
{{- end }}
containers:
  - name: {{ .component }}
    image: {{ .image | default (include "sonantica.image" $root) }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    args: {{ toJson .args }}
    securityContext:
      {{- toYaml $root.Values.securityContext | nindent 6 }}
    envFrom:
      - configMapRef:
          name: {{ include "sonantica.fullname" $root }}
    env:
      {{- include "sonantica.env" $root | nindent 6 }}
    {{- with .extra }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- with .spec.probes }}
    {{- with .liveness }}
    livenessProbe:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .readiness }}
    readinessProbe:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .startup }}
    startupProbe:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- end }}
    {{- with .spec.resources }}
    resources:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    volumeMounts:
      - name: library
        mountPath: {{ $root.Values.library.mountPath }}
        readOnly: true
        {{- with $root.Values.library.subPath }}
        subPath: {{ . }}
        {{- end }}
      - name: data
        mountPath: /data
      - name: tmp
        mountPath: /tmp
      {{- with $root.Values.extraVolumeMounts }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
volumes:
  - name: library
    persistentVolumeClaim:
      claimName: {{ $root.Values.library.existingClaim }}
      readOnly: true
  - name: data
    {{- if $root.Values.persistence.enabled }}
    persistentVolumeClaim:
      claimName: {{ include "sonantica.dataClaim" $root }}
    {{- else }}
    emptyDir: {}
    {{- end }}
  # The root filesystem is read-only; numba's JIT cache and downloads in progress go to /tmp.
  - name: tmp
    emptyDir: {}
  {{- with $root.Values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}
