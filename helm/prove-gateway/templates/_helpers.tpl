{{/*
Expand the name of the chart.
*/}}
{{- define "prove-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name.
We truncate at 63 chars because some Kubernetes name fields are limited to this (by the DNS naming spec).
If release name contains chart name it will be used as a full name.
*/}}
{{- define "prove-gateway.fullname" -}}
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
Create chart name and version as used by the chart label.
*/}}
{{- define "prove-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels, on every resource the chart renders.
*/}}
{{- define "prove-gateway.labels" -}}
helm.sh/chart: {{ include "prove-gateway.chart" . }}
{{ include "prove-gateway.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: grpc-gateway
{{- end }}

{{/*
Selector labels: the stable subset of the labels that Services, the PodDisruptionBudget and the
NetworkPolicy select Pods by. Never change them on an existing release (Deployment selectors are
immutable).
*/}}
{{- define "prove-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "prove-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Create the name of the service account to use.
*/}}
{{- define "prove-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "prove-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Whether the chart creates the credentials Secret: no existingSecret, and at least one credential
value is set. Renders "true" or nothing.
*/}}
{{- define "prove-gateway.createSecret" -}}
{{- $c := .Values.credentials }}
{{- if and (not $c.existingSecret) (or $c.shared.clientId $c.shared.clientSecret $c.unify.clientId $c.unify.clientSecret $c.verify.clientId $c.verify.clientSecret) }}true{{- end }}
{{- end }}

{{/*
Name of the Secret holding the Prove credentials: credentials.existingSecret, or the one the
chart creates (`<fullname>-credentials`). Empty when the gateway runs without credentials
(the embedded simulator).
*/}}
{{- define "prove-gateway.secretName" -}}
{{- if .Values.credentials.existingSecret }}
{{- .Values.credentials.existingSecret }}
{{- else if include "prove-gateway.createSecret" . }}
{{- printf "%s-credentials" (include "prove-gateway.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
The credential pairs passed to the gateway, as a list of dicts
{prefix, idKey, secretKey, clientId, clientSecret} (prefix is PROVE, PROVE_UNIFY or PROVE_VERIFY).
Rendered as JSON; read it back with `include … | fromJson`.
*/}}
{{- define "prove-gateway.credentialPairs" -}}
{{- $c := .Values.credentials }}
{{- $pairs := list }}
{{- range $p := list (list "PROVE" $c.shared) (list "PROVE_UNIFY" $c.unify) (list "PROVE_VERIFY" $c.verify) }}
{{- $v := index $p 1 }}
{{- if $v.enabled }}
{{- $pairs = append $pairs (dict "prefix" (index $p 0) "idKey" $v.clientIdKey "secretKey" $v.clientSecretKey "clientId" $v.clientId "clientSecret" $v.clientSecret) }}
{{- end }}
{{- end }}
{{- dict "pairs" $pairs | toJson }}
{{- end }}

{{/*
Name of the kubernetes.io/tls Secret the gateway serves from: tls.existingSecret, or
`<fullname>-tls`, which the chart's cert-manager Certificate writes. Empty when TLS is off.
*/}}
{{- define "prove-gateway.tlsSecretName" -}}
{{- if .Values.tls.enabled }}
{{- if .Values.tls.existingSecret }}
{{- .Values.tls.existingSecret }}
{{- else if .Values.tls.certManager.enabled }}
{{- printf "%s-tls" (include "prove-gateway.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Path of the client CA bundle (PROVE_GATEWAY_CLIENT_CA_FILE), or nothing without mTLS. With
source `tlsSecret` the bundle is a key of the TLS Secret's volume; otherwise it has its own.
*/}}
{{- define "prove-gateway.clientCAFile" -}}
{{- $t := .Values.tls }}
{{- if and $t.enabled $t.clientCA.enabled }}
{{- $dir := ternary $t.mountPath $t.clientCA.mountPath (eq $t.clientCA.source "tlsSecret") }}
{{- printf "%s/%s" (trimSuffix "/" $dir) $t.clientCA.key }}
{{- end }}
{{- end }}

{{/*
Name of the Secret holding the callers file: callers.existingSecret, or `<fullname>-callers`
when callers.inline is given (the chart creates it). Empty: no callers file.
*/}}
{{- define "prove-gateway.callersSecretName" -}}
{{- if .Values.callers.existingSecret }}
{{- .Values.callers.existingSecret }}
{{- else if .Values.callers.inline }}
{{- printf "%s-callers" (include "prove-gateway.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
Whether the gateway authenticates its callers (mTLS or a callers file). Renders "true" or
nothing. Without either it runs open, and NOTES.txt says so.
*/}}
{{- define "prove-gateway.authenticated" -}}
{{- if or (include "prove-gateway.clientCAFile" .) (include "prove-gateway.callersSecretName" .) }}true{{- end }}
{{- end }}

{{/*
The profile the gateway runs (PROVE_GATEWAY_PROFILE): `development` on the simulator, which
production would refuse, else `profile`.
*/}}
{{- define "prove-gateway.profile" -}}
{{- ternary "development" .Values.profile .Values.simulator.enabled }}
{{- end }}

{{/*
Container image reference: repository, then `@digest` when set, else `:tag` (default appVersion).
*/}}
{{- define "prove-gateway.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
terminationGracePeriodSeconds, derived so the kubelet never kills a draining gateway early:
preStop sleep + shutdown delay (PROVE_GATEWAY_SHUTDOWN_DELAY) + drain timeout
(PROVE_GATEWAY_DRAIN_TIMEOUT) + margin.
*/}}
{{- define "prove-gateway.terminationGracePeriodSeconds" -}}
{{- $g := .Values.gateway }}
{{- add (int $g.preStopSleepSeconds) (int $g.shutdownDelaySeconds) (int $g.drainTimeoutSeconds) (int $g.terminationGraceMarginSeconds) }}
{{- end }}

{{/*
Checks across values that the JSON schema cannot express. Fails the render with a message that
names the values to change.
*/}}
{{- define "prove-gateway.validate" -}}
{{- $c := .Values.credentials }}
{{- $pairs := (include "prove-gateway.credentialPairs" . | fromJson).pairs }}
{{- $hasCreds := or $c.existingSecret (include "prove-gateway.createSecret" .) }}
{{- /* First, because every other value follows from it: who answers, Prove or the simulator.
An empty prove.baseUrl must never quietly mean the simulator, or an install that lost a value
tells callers that people were verified when nobody was. */}}
{{- if and .Values.simulator.enabled .Values.prove.baseUrl }}
{{- fail "simulator.enabled and prove.baseUrl are both set: the simulator answers instead of Prove, so set only one" }}
{{- end }}
{{- if and (not .Values.simulator.enabled) (not .Values.prove.baseUrl) }}
{{- fail "prove.baseUrl is empty: set it to uat-us, prod-us, uat-eu, prod-eu or an https URL, with credentials.existingSecret, to reach Prove; or set simulator.enabled=true to try the chart on the embedded simulator (answers are simulated, never for production)" }}
{{- end }}
{{- if and .Values.prove.baseUrl (not $hasCreds) }}
{{- fail "prove.baseUrl is set but there are no credentials: set credentials.existingSecret (recommended) or credentials.shared.clientId/clientSecret" }}
{{- end }}
{{- if and $hasCreds .Values.simulator.enabled }}
{{- fail "credentials are set but simulator.enabled is true, and the simulator takes no credentials: set prove.baseUrl (uat-us, prod-us, uat-eu, prod-eu or an https URL) instead of simulator.enabled" }}
{{- end }}
{{- if and $hasCreds (eq (len $pairs) 0) }}
{{- fail "credentials are set but credentials.shared, .unify and .verify are all disabled" }}
{{- end }}
{{- if include "prove-gateway.createSecret" . }}
{{- range $p := $pairs }}
{{- if not (and $p.clientId $p.clientSecret) }}
{{- fail (printf "the chart-created credentials Secret needs both a client ID and a client secret for %s_CLIENT_ID/%s_CLIENT_SECRET (or use credentials.existingSecret)" $p.prefix $p.prefix) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (not (kindIs "invalid" .Values.podDisruptionBudget.minAvailable)) (not (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable)) (ne (toString .Values.podDisruptionBudget.minAvailable) "") (ne (toString .Values.podDisruptionBudget.maxUnavailable) "") }}
{{- fail "podDisruptionBudget: set only one of minAvailable and maxUnavailable (set the other to \"\")" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (lt (int .Values.autoscaling.maxReplicas) (int .Values.autoscaling.minReplicas)) }}
{{- fail "autoscaling.maxReplicas must be >= autoscaling.minReplicas" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (not .Values.autoscaling.targetCPUUtilizationPercentage) (not .Values.autoscaling.targetMemoryUtilizationPercentage) }}
{{- fail "autoscaling is enabled but both targetCPUUtilizationPercentage and targetMemoryUtilizationPercentage are 0" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (not (and .Values.resources.requests (or .Values.resources.requests.cpu .Values.resources.requests.memory))) }}
{{- fail "autoscaling needs resources.requests (utilisation is a percentage of the request)" }}
{{- end }}
{{- if and (gt (int .Values.gateway.preStopSleepSeconds) 0) (not (semverCompare ">=1.30.0-0" .Capabilities.KubeVersion.Version)) }}
{{- fail "gateway.preStopSleepSeconds needs Kubernetes >= 1.30 (the sleep lifecycle action)" }}
{{- end }}
{{- $g := .Values.gateway }}
{{- if or (eq (int $g.healthPort) (int $g.grpcPort)) (eq (int $g.healthPort) (int $g.metricsPort)) }}
{{- fail "gateway.healthPort must differ from gateway.grpcPort and gateway.metricsPort (health is served in plaintext on a port of its own)" }}
{{- end }}
{{- $t := .Values.tls }}
{{- if and $t.enabled (not $t.existingSecret) (not $t.certManager.enabled) }}
{{- fail "tls.enabled needs a certificate: set tls.existingSecret (a kubernetes.io/tls Secret) or tls.certManager.enabled" }}
{{- end }}
{{- if and $t.existingSecret $t.certManager.enabled }}
{{- fail "set only one of tls.existingSecret and tls.certManager.enabled (the Certificate writes its own Secret, <fullname>-tls)" }}
{{- end }}
{{- if and (not $t.enabled) (or $t.existingSecret $t.certManager.enabled $t.clientCA.enabled) }}
{{- fail "tls.existingSecret, tls.certManager and tls.clientCA need tls.enabled: true (mTLS is TLS with client certificates)" }}
{{- end }}
{{- if and $t.certManager.enabled (not $t.certManager.issuerRef.name) }}
{{- fail "tls.certManager.enabled needs tls.certManager.issuerRef.name" }}
{{- end }}
{{- if and $t.clientCA.enabled (ne $t.clientCA.source "tlsSecret") (not $t.clientCA.name) }}
{{- fail (printf "tls.clientCA.source is %s: set tls.clientCA.name" $t.clientCA.source) }}
{{- end }}
{{- if and .Values.callers.existingSecret .Values.callers.inline }}
{{- fail "set only one of callers.existingSecret and callers.inline" }}
{{- end }}
{{- $rl := .Values.prove.rateLimit }}
{{- if and (or .Values.redis.url .Values.redis.urlSecret.name) (or $rl.redisUrl $rl.redisUrlSecret.name) }}
{{- fail "prove.rateLimit.redisUrl/redisUrlSecret are deprecated and redis.url/urlSecret is set too: keep only redis.url (or redis.urlSecret)" }}
{{- end }}
{{- if and .Values.otel.samplerArg (not (hasSuffix "traceidratio" .Values.otel.sampler)) }}
{{- fail "otel.samplerArg is only read by the traceidratio samplers: set otel.sampler to traceidratio or parentbased_traceidratio" }}
{{- end }}
{{- include "prove-gateway.validateProduction" . }}
{{- end }}

{{/*
What the production profile makes the binary refuse, refused here first, so that a bad install
fails at `helm install` rather than as a Pod in CrashLoopBackOff. All missing values are named in
one message, as the binary does, so one round of fixes is enough. The metrics address the binary
also requires is always set (PROVE_GATEWAY_METRICS_LISTEN from gateway.metricsPort).
*/}}
{{- define "prove-gateway.validateProduction" -}}
{{- if eq (include "prove-gateway.profile" .) "production" }}
{{- $missing := list }}
{{- if hasPrefix "http://" (lower .Values.prove.baseUrl) }}
{{- $missing = append $missing "prove.baseUrl must be https (it is plain http://, which carries the client secret in clear)" }}
{{- end }}
{{- if not .Values.tls.enabled }}
{{- $missing = append $missing "tls.enabled: true with tls.existingSecret or tls.certManager.enabled (TLS on the gRPC port)" }}
{{- end }}
{{- if not (include "prove-gateway.authenticated" .) }}
{{- $missing = append $missing "tls.clientCA.enabled: true, or callers.existingSecret or callers.inline (authenticated callers)" }}
{{- end }}
{{- if $missing }}
{{- fail (printf "profile production needs: %s. To try the chart without them, set simulator.enabled=true; for a UAT install without them, profile=development" (join "; " $missing)) }}
{{- end }}
{{- end }}
{{- end }}
