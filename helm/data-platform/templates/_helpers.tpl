{{/* Chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "data-platform.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: the release name, prefixed to every object. */}}
{{- define "data-platform.fullname" -}}
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

{{- define "data-platform.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries. */}}
{{- define "data-platform.labels" -}}
helm.sh/chart: {{ include "data-platform.chart" . }}
app.kubernetes.io/part-of: {{ include "data-platform.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
dataplatform.io/environment: {{ .Values.environment }}
{{- end }}

{{/* Selector labels of one component: call with (dict "ctx" $ "component" "api"). */}}
{{- define "data-platform.selectorLabels" -}}
app.kubernetes.io/name: {{ include "data-platform.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Full labels of one component. */}}
{{- define "data-platform.componentLabels" -}}
{{ include "data-platform.labels" .ctx }}
{{ include "data-platform.selectorLabels" . }}
{{- end }}

{{/* The application image; imageTag (set by CI / GitOps) wins over image.tag, a digest wins over both. */}}
{{- define "data-platform.image" -}}
{{- $tag := default .Values.image.tag .Values.imageTag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{ printf "%s/%s@%s" .Values.image.registry .Values.image.repository .Values.image.digest }}
{{- else -}}
{{ printf "%s/%s:%s" .Values.image.registry .Values.image.repository $tag }}
{{- end -}}
{{- end }}

{{/* Pod-level securityContext: Pod Security "restricted". */}}
{{- define "data-platform.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser }}
runAsGroup: {{ .Values.podSecurity.runAsGroup }}
fsGroup: {{ .Values.podSecurity.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container-level securityContext: restricted + read-only root filesystem. */}}
{{- define "data-platform.containerSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser }}
runAsGroup: {{ .Values.podSecurity.runAsGroup }}
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Name of the Secret holding the application's secrets (plaintext in dev, unsealed from a SealedSecret elsewhere). */}}
{{- define "data-platform.secretName" -}}
{{- default (printf "%s-secrets" (include "data-platform.fullname" .)) .Values.secrets.existingSecret }}
{{- end }}

{{- define "data-platform.serviceAccountName" -}}
{{- printf "%s-app" (include "data-platform.fullname" .) }}
{{- end }}

{{/* Host name of PostgreSQL: the CloudNativePG read-write service or the in-chart StatefulSet's service. */}}
{{- define "data-platform.postgresHost" -}}
{{- if not .Values.postgresql.enabled -}}
{{ .Values.postgresql.external.host }}
{{- else if eq .Values.postgresql.mode "cloudnativepg" -}}
{{ printf "%s-pg-rw" (include "data-platform.fullname" .) }}
{{- else -}}
{{ printf "%s-postgresql" (include "data-platform.fullname" .) }}
{{- end -}}
{{- end }}

{{/* Pod labels that select PostgreSQL pods, for NetworkPolicies. */}}
{{- define "data-platform.postgresPodLabels" -}}
{{- if eq .Values.postgresql.mode "cloudnativepg" -}}
cnpg.io/cluster: {{ include "data-platform.fullname" . }}-pg
{{- else -}}
{{ include "data-platform.selectorLabels" (dict "ctx" . "component" "postgresql") }}
{{- end -}}
{{- end }}

{{- define "data-platform.s3Endpoint" -}}
{{- if .Values.minio.enabled -}}
{{ printf "http://%s-minio:9000" (include "data-platform.fullname" .) }}
{{- else -}}
{{ .Values.objectStore.endpointUrl }}
{{- end -}}
{{- end }}

{{/* Environment shared by every application container (non-secret settings only). */}}
{{- define "data-platform.appEnv" -}}
- name: DATAPLATFORM_PROFILE
  value: {{ .Values.config.profile | quote }}
- name: DATAPLATFORM_HOME
  value: /tmp/dataplatform
- name: DATAPLATFORM_SECRETS_DIR
  value: {{ .Values.secrets.mountPath | quote }}
- name: DATAPLATFORM_WAREHOUSE_BACKEND
  value: postgres
- name: DATAPLATFORM_POSTGRES_HOST
  value: {{ include "data-platform.postgresHost" . | quote }}
- name: DATAPLATFORM_POSTGRES_PORT
  value: "5432"
- name: DATAPLATFORM_POSTGRES_DB
  value: {{ .Values.config.postgresDatabase | quote }}
- name: DATAPLATFORM_POSTGRES_USER
  value: {{ .Values.config.postgresUsers.pipeline | quote }}
{{- with .Values.config.postgresUsers.dbt }}
- name: DATAPLATFORM_POSTGRES_DBT_USER
  value: {{ . | quote }}
{{- end }}
{{- with .Values.config.postgresUsers.ml }}
- name: DATAPLATFORM_POSTGRES_ML_USER
  value: {{ . | quote }}
{{- end }}
- name: DATAPLATFORM_POSTGRES_SSLMODE
  value: {{ .Values.config.postgresSslMode | quote }}
- name: DATAPLATFORM_OBJECT_STORE_URI
  value: {{ .Values.objectStore.uri | quote }}
- name: DATAPLATFORM_S3_ENDPOINT_URL
  value: {{ include "data-platform.s3Endpoint" . | quote }}
- name: DATAPLATFORM_S3_REGION
  value: {{ .Values.objectStore.region | quote }}
- name: DATAPLATFORM_MLFLOW_TRACKING_URI
  value: {{ printf "http://%s-mlflow:%d" (include "data-platform.fullname" .) (int .Values.mlflow.port) | quote }}
- name: DATAPLATFORM_LOG_LEVEL
  value: {{ .Values.config.logLevel | quote }}
{{- if and .Values.postgresql.enabled (eq .Values.postgresql.mode "cloudnativepg") }}
- name: DATAPLATFORM_POSTGRES_SSLROOTCERT
  value: /var/run/secrets/postgresql-ca/ca.crt
{{- end }}
{{- end }}

{{/* Volumes every application pod mounts: writable /tmp and the secrets folder. */}}
{{- define "data-platform.appVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
- name: secrets
  secret:
    secretName: {{ include "data-platform.secretName" . }}
    defaultMode: 0400
{{- if and .Values.postgresql.enabled (eq .Values.postgresql.mode "cloudnativepg") }}
# CA of the CloudNativePG cluster, so sslmode=verify-full can check the server certificate.
- name: postgresql-ca
  secret:
    secretName: {{ include "data-platform.fullname" . }}-pg-ca
    defaultMode: 0444
    items:
      - key: ca.crt
        path: ca.crt
{{- end }}
{{- end }}

{{- define "data-platform.appVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: secrets
  mountPath: {{ .Values.secrets.mountPath }}
  readOnly: true
{{- if and .Values.postgresql.enabled (eq .Values.postgresql.mode "cloudnativepg") }}
- name: postgresql-ca
  mountPath: /var/run/secrets/postgresql-ca
  readOnly: true
{{- end }}
{{- end }}

{{/* Pod spec fields shared by every workload of the application image. */}}
{{- define "data-platform.appPodCommon" -}}
serviceAccountName: {{ include "data-platform.serviceAccountName" . }}
automountServiceAccountToken: false
securityContext:
  {{- include "data-platform.podSecurityContext" . | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
