{{- define "flk.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "flk.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels common to every object; pass (dict "ctx" $ "component" "web"). */}}
{{- define "flk.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
{{ include "flk.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: flk-verifier
{{- end -}}

{{- define "flk.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flk.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{- define "flk.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "flk.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "flk.secretName" -}}
{{- default (include "flk.fullname" .) .Values.secret.existingSecret -}}
{{- end -}}

{{- define "flk.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Host names Django answers to: the ingress hosts, the web services, localhost and the pod's own IP
     (kubelet probes and Prometheus address pods by IP). */}}
{{- define "flk.allowedHosts" -}}
{{- $web := printf "%s-web" (include "flk.fullname" .) -}}
{{- $hosts := list "$(POD_IP)" "localhost" "127.0.0.1" $web (printf "%s.%s.svc" $web .Release.Namespace) (printf "%s.%s.svc.cluster.local" $web .Release.Namespace) -}}
{{- if .Values.ingress.enabled }}{{ $hosts = concat $hosts .Values.ingress.hosts }}{{ end -}}
{{- concat $hosts .Values.config.allowedHosts | uniq | join "," -}}
{{- end -}}

{{- define "flk.csrfOrigins" -}}
{{- $origins := list -}}
{{- if .Values.ingress.enabled }}{{ range .Values.ingress.hosts }}{{ $origins = append $origins (printf "https://%s" .) }}{{ end }}{{ end -}}
{{- concat $origins .Values.config.csrfTrustedOrigins | uniq | join "," -}}
{{- end -}}

{{/* Environment of every container: settings from values, secrets from the Secret. Each workload adds
     its FLK_VAR_DIR / FLK_WAL_DIR (flk.webWalEnv or flk.noWalEnv). */}}
{{- define "flk.env" -}}
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: DJANGO_DEBUG
  value: "0"
- name: DJANGO_ALLOWED_HOSTS
  value: {{ include "flk.allowedHosts" . | quote }}
- name: DJANGO_CSRF_TRUSTED_ORIGINS
  value: {{ include "flk.csrfOrigins" . | quote }}
# TLS ends at the ingress, which redirects plain HTTP itself; probes speak plain HTTP to the pod.
- name: DJANGO_SECURE_SSL_REDIRECT
  value: "0"
- name: DJANGO_TRUST_X_FORWARDED_PROTO
  value: "1"
# With the ingress (always TLS), browsers arrive over HTTPS only: Secure cookies and HSTS.
- name: FLK_HTTPS
  value: {{ ternary "1" "0" .Values.ingress.enabled | quote }}
- name: FLK_HSTS_SECONDS
  value: {{ .Values.ingress.tls.hstsSeconds | default 31536000 | quote }}
- name: PCS_SIGN_ALG
  value: {{ .Values.signing.alg | quote }}
- name: FLK_ALLOW_UNSIGNED
  value: {{ ternary "1" "0" .Values.signing.allowUnsigned | quote }}
- name: PCS_MIN_VERSION
  value: {{ .Values.signing.minPcsVersion | default "0.1" | quote }}
- name: TOKEN_RATE
  value: {{ .Values.config.tokenRate | quote }}
{{- if .Values.config.tokenBurst }}
- name: TOKEN_BURST
  value: {{ .Values.config.tokenBurst | quote }}
{{- end }}
- name: FLK_MAX_BODY_BYTES
  value: {{ .Values.config.maxBodyBytes | quote }}
- name: FLK_BATCH_MAX_ITEMS
  value: {{ .Values.config.batchMaxItems | quote }}
- name: FLK_BATCH_MAX_BYTES
  value: {{ .Values.config.batchMaxBytes | quote }}
- name: FLK_WAL_RETENTION_DAYS
  value: {{ .Values.config.walRetentionDays | quote }}
- name: FLK_LOG_LEVEL
  value: {{ .Values.config.logLevel | quote }}
- name: PROMETHEUS_MULTIPROC_DIR
  value: /var/lib/flk-metrics
{{- range $name, $value := .Values.config.extraEnv }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- range $key := list "DJANGO_SECRET_KEY" "DATABASE_URL" "REDIS_URL" "METRICS_USER" "METRICS_PASS" }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ include "flk.secretName" $ }}
      key: {{ $key }}
{{- end }}
{{- range $key := list "PCS_HMAC_KEYS" "PCS_ED25519_PUB_KEYS" }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ include "flk.secretName" $ }}
      key: {{ $key }}
      optional: true
{{- end }}
{{- end -}}

{{/* The only writable paths besides web's WAL volume: /tmp and the Prometheus multiprocess directory. */}}
{{- define "flk.scratchVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: metrics
  mountPath: /var/lib/flk-metrics
{{- end -}}

{{- define "flk.scratchVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
- name: metrics
  emptyDir:
    sizeLimit: 128Mi
{{- end -}}

{{/* topologySpreadConstraints for one component; pass (dict "ctx" $ "component" "web"). */}}
{{- define "flk.topologySpread" -}}
{{- $ctx := .ctx -}}
{{- $component := .component -}}
{{- range .ctx.Values.topologySpread }}
- topologyKey: {{ .topologyKey }}
  maxSkew: {{ .maxSkew }}
  whenUnsatisfiable: {{ .whenUnsatisfiable }}
  labelSelector:
    matchLabels:
      {{- include "flk.selectorLabels" (dict "ctx" $ctx "component" $component) | nindent 6 }}
{{- end }}
{{- end -}}

{{- define "flk.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end -}}

{{/* web: the WAL on the pod's own volume. */}}
{{- define "flk.webWalEnv" -}}
- name: FLK_VAR_DIR
  value: /var/lib/flk
- name: FLK_WAL_DIR
  value: /var/lib/flk/wal
{{- end -}}

{{/* worker, beat, migrations: no WAL of their own (each web pod replays and purges its own), so the
     periodic WAL tasks find an empty scratch directory and do nothing. */}}
{{- define "flk.noWalEnv" -}}
- name: FLK_VAR_DIR
  value: /tmp/flk
- name: FLK_WAL_DIR
  value: /tmp/flk/wal
{{- end -}}
