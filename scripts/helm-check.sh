#!/usr/bin/env bash
# Checks the Helm chart in helm/prove-gateway against Kubernetes and against the binary.
#
# Usage: scripts/helm-check.sh path/to/prove-gateway   (e.g. target/debug/prove-gateway)
#
# What it asserts (any failure exits non-zero with a line starting "helm-check: FAIL"):
#  1. `helm lint --strict` passes, alone and with every ci/*-values.yaml scenario; every key in
#     values.yaml has a comment; every object in values.schema.json is closed and described.
#  2. Every scenario renders, and each rendered document is valid under kubeconform -strict
#     against the Kubernetes JSON schemas of the chart's minimum and of the newest Kubernetes
#     version. ServiceMonitor and cert-manager's Certificate, CRDs, are the only kinds skipped;
#     the Certificate's fields are checked by name below instead.
#  3. Every environment variable name the chart sets on the gateway container is one the
#     binary reads: it must appear as `[env: NAME...]` in `BINARY --help`.
#  4. Ports agree with the binary's defaults (50051 gRPC, 9090 metrics, from `--help`): the
#     container ports, PROVE_GATEWAY_LISTEN / _METRICS_LISTEN, the Service's `grpc` port
#     (appProtocol grpc) and the Prometheus annotation. The three gRPC probes go to the plaintext
#     health port (`health`, PROVE_GATEWAY_HEALTH_LISTEN), never to the gRPC port, which may
#     speak TLS; the Service has a `health` port only for the `helm test` Pod, which checks it.
#  5. terminationGracePeriodSeconds = preStop sleep + drain timeout + margin, and
#     PROVE_GATEWAY_DRAIN_TIMEOUT matches, for every scenario and for changed values.
#  6. The hardened securityContext is in place on every scenario, and in file mode no
#     credential reaches the environment. Every *_FILE variable names a file of a mounted
#     volume, and no volume is mounted with subPath (a subPath mount never sees a Secret's
#     update, so a renewed certificate or an edited callers file would never arrive).
#     Per scenario: ci/mtls-values.yaml mounts the TLS Secret (tls.crt, tls.key, ca.crt) and the
#     callers Secret and sets PROVE_GATEWAY_TLS_CERT_FILE / _TLS_KEY_FILE / _CLIENT_CA_FILE /
#     _CALLERS_FILE to them; production's cert-manager Certificate writes the Secret it mounts;
#     callers.inline renders a callers file the gateway can parse.
#     The real binary starts with each scenario's env (certificates made here with openssl,
#     a callers file written here), answers grpc.health.v1 in plaintext on the probes' port
#     and, with TLS, presents the certificate on the gRPC port (refusing a client without a
#     certificate under mTLS); after SIGTERM it exits 0 (a clean drain: nothing is in flight)
#     within the grace period.
#     The profile: PROVE_GATEWAY_PROFILE is development on the simulator scenarios and
#     production elsewhere (redis-limiter states development); production scenarios start the
#     binary in production, with an https Prove URL and credential files made here, so the
#     binary's own production checks pass on what the chart renders.
#  7. Values of the wrong type, unknown keys and inconsistent settings make `helm template`
#     fail (non-zero exit, with the schema's or the chart's message). The default values
#     without prove.baseUrl fail with a message naming prove.baseUrl and simulator.enabled, and
#     production without TLS, without authenticated callers or with http:// to Prove fails
#     naming the values.
#  8. NOTES warn loudly that answers are simulated exactly on the scenarios with
#     simulator.enabled.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
chart="$root/helm/prove-gateway"

fail() { printf 'helm-check: FAIL: %s\n' "$*" >&2; exit 1; }
step() { printf 'helm-check: %s\n' "$*"; }

[ $# -eq 1 ] || fail "usage: $0 path/to/prove-gateway (the built binary, for its --help)"
binary="$1"
[ -x "$binary" ] || fail "$binary is not an executable file (build it first: cargo build)"
command -v python3 >/dev/null || fail "python3 is needed"
python3 -c 'import yaml' 2>/dev/null || fail "python3 needs PyYAML (apt-get install python3-yaml)"

# Tools: installed (or found) by the idempotent installer, which prints HELM=, KUBECONFORM=
# and K8S_SCHEMA_DIR=.
tools="$(bash "$here/install-helm-tools.sh")" || fail "scripts/install-helm-tools.sh failed"
HELM="$(sed -n 's/^HELM=//p' <<<"$tools")"
KUBECONFORM="$(sed -n 's/^KUBECONFORM=//p' <<<"$tools")"
K8S_SCHEMA_DIR="$(sed -n 's/^K8S_SCHEMA_DIR=//p' <<<"$tools")"
# Keep in step with K8S_VERSIONS in install-helm-tools.sh; the first is Chart.yaml's kubeVersion.
K8S_VERSIONS=(1.27.0 1.37.0)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# --- 1. lint -------------------------------------------------------------------------------
step "helm lint --strict"
# Alone, on the defaults, which `helm template` refuses (no prove.baseUrl; section 7 checks
# that): helm's lint mode reports a template's `fail` as [INFO] and lints the rest.
"$HELM" lint --strict "$chart" >"$work/lint.log" 2>&1 || { cat "$work/lint.log" >&2; fail "helm lint --strict"; }
no_base_url="prove.baseUrl is empty: set it to .* or set simulator.enabled=true"
scenarios=("$chart"/ci/*-values.yaml)
[ ${#scenarios[@]} -ge 7 ] || fail "expected the ci/*-values.yaml scenarios, found ${#scenarios[@]}"
for f in "${scenarios[@]}"; do
  "$HELM" lint --strict "$chart" -f "$f" >"$work/lint.log" 2>&1 \
    || { cat "$work/lint.log" >&2; fail "helm lint --strict -f ci/$(basename "$f")"; }
done

# values.yaml documents every key; the schema closes and describes every object it defines.
python3 - "$chart" <<'PY' || fail "values.yaml / values.schema.json documentation (see above)"
import json, re, sys
chart = sys.argv[1]
bad = []
lines = open(f"{chart}/values.yaml").read().splitlines()
for i, line in enumerate(lines):
    if re.match(r"^\s*[A-Za-z][\w-]*:", line):
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j < 0 or not lines[j].lstrip().startswith("#"):
            bad.append(f"values.yaml:{i + 1}: key without a comment above it: {line.strip()}")
def walk(node, path):
    if node.get("type") == "object" and "properties" in node and node.get("additionalProperties") is not False:
        bad.append(f"values.schema.json: {path or '/'} lacks additionalProperties: false")
    for key, sub in node.get("properties", {}).items():
        if "description" not in sub:
            bad.append(f"values.schema.json: {path}.{key} has no description")
        walk(sub, f"{path}.{key}")
walk(json.load(open(f"{chart}/values.schema.json")), "")
for b in bad:
    print(f"helm-check: FAIL: {b}", file=sys.stderr)
sys.exit(1 if bad else 0)
PY

# --- 2. render + kubeconform ---------------------------------------------------------------
render() { # out kube-version helm-args...
  local out="$1" kv="$2"; shift 2
  "$HELM" template prove-gateway "$chart" --namespace identity --kube-version "$kv" "$@" >"$out"
}
for kv in "${K8S_VERSIONS[@]}"; do
  schema_location="$K8S_SCHEMA_DIR/{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json"
  for f in "${scenarios[@]}"; do
    name="$(basename "$f" .yaml)"
    out="$work/$name-$kv.yaml"
    render "$out" "$kv" -f "$f" 2>"$work/err" || { cat "$work/err" >&2; fail "helm template -f ci/$name.yaml (Kubernetes $kv)"; }
    # -strict: unknown fields are errors. ServiceMonitor and Certificate are CRDs with no schema here.
    if ! "$KUBECONFORM" -strict -summary -skip ServiceMonitor,Certificate -kubernetes-version "$kv" \
        -schema-location "$schema_location" "$out" >"$work/kc.log" 2>&1; then
      cat "$work/kc.log" >&2
      fail "kubeconform: ci/$name.yaml is not valid for Kubernetes $kv"
    fi
    # kubeconform skips what it has no schema for only when told; make sure nothing was.
    grep -q 'Errors: 0' "$work/kc.log" || { cat "$work/kc.log" >&2; fail "kubeconform errors for ci/$name.yaml"; }
    step "kubeconform ok: ci/$name.yaml on Kubernetes $kv ($(sed -n 's/.*Valid: \([0-9]*\).*/\1/p' "$work/kc.log") valid, ServiceMonitor and Certificate skipped)"
  done
done

# --- 3-6. manifests against the binary -------------------------------------------------------
"$binary" --help >"$work/help.txt" 2>&1 || fail "$binary --help exited non-zero"
latest="${K8S_VERSIONS[-1]}"
# Changed timing values, to see the grace period follow the drain timeout.
# These vary one setting on the simulator (the defaults alone do not render without Prove).
sim=(--set simulator.enabled=true)
render "$work/drain45.yaml" "$latest" "${sim[@]}" --set gateway.drainTimeoutSeconds=45 --set gateway.terminationGraceMarginSeconds=7 \
  || fail "helm template with drainTimeoutSeconds=45"
render "$work/prestop.yaml" "$latest" "${sim[@]}" --set gateway.preStopSleepSeconds=5 \
  || fail "helm template with preStopSleepSeconds=5"
render "$work/ports.yaml" "$latest" "${sim[@]}" --set gateway.grpcPort=6000 --set gateway.metricsPort=6001 \
  --set gateway.healthPort=6002 --set service.healthPort=7002 || fail "helm template with other ports"
# No helm test: the Service then has no reason to expose the health port.
render "$work/notests.yaml" "$latest" "${sim[@]}" --set tests.enabled=false || fail "helm template with tests.enabled=false"

python3 - "$work/help.txt" "$work" "$latest" "${scenarios[@]}" <<'PY'
import os, re, sys, yaml

help_path, work, latest, scenarios = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
help_text = open(help_path).read()
errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)

# clap prints `[env: NAME=value]` or `[env: NAME]` after each flag that has an env variable.
binary_env = set(re.findall(r"\[env: ([A-Z][A-Z0-9_]*)", help_text))
check(binary_env, "no `[env: NAME]` entries in the binary's --help output")
def default_port(env):
    # The flag's help lists `[env: ENV=...]` and `[default: 0.0.0.0:PORT]` in the same block.
    m = re.search(r"\[env: " + env + r"[^\]]*\][^\[]*\[default: [^\]]*:(\d+)\]", help_text) or \
        re.search(r"\[default: [^\]]*:(\d+)\][^\[]*\[env: " + env + r"[\]=]", help_text)
    return int(m.group(1)) if m else None
grpc_default = default_port("PROVE_GATEWAY_LISTEN")
metrics_default = default_port("PROVE_GATEWAY_METRICS_LISTEN")
check(grpc_default == 50051, f"binary's default gRPC port is {grpc_default}, the chart assumes 50051")
check(metrics_default == 9090, f"binary's default metrics port is {metrics_default}, the chart assumes 9090")

def load(path):
    return [d for d in yaml.safe_load_all(open(path)) if d]
def one(docs, kind, where):
    found = [d for d in docs if d["kind"] == kind and "helm.sh/hook" not in (d["metadata"].get("annotations") or {})]
    check(len(found) == 1, f"{where}: expected one {kind}, found {len(found)}")
    return found[0] if found else None
def gateway_container(dep):
    return next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "prove-gateway")
def env_map(c):
    return {e["name"]: e for e in c.get("env", [])}

def file_source(pod_spec, c, path):
    """Where the file at `path` comes from: (kind, name, key) of the Secret or ConfigMap volume
    mounted on its directory, or None when no volume holds it."""
    for m in c.get("volumeMounts", []):
        if os.path.dirname(path) != m["mountPath"].rstrip("/"):
            continue
        vol = next((v for v in pod_spec.get("volumes", []) if v["name"] == m["name"]), None)
        if vol is None:
            return None
        for kind, name_field in (("secret", "secretName"), ("configMap", "name")):
            if kind in vol:
                src = vol[kind]
                items = src.get("items")
                base = os.path.basename(path)
                if items is None:
                    return (kind, src[name_field], base)
                item = next((i for i in items if i["path"] == base), None)
                return (kind, src[name_field], item["key"]) if item else None
    return None

def test_targets(docs):
    hooks = [d for d in docs if (d["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"]
    if not hooks:
        return None
    env = {e["name"]: e.get("value", "") for e in hooks[0]["spec"]["containers"][0].get("env", [])}
    return env.get("TARGETS", "").split()

def check_manifest(path, where, grpc_port=50051, metrics_port=9090, health_port=8081, values=None):
    docs = load(path)
    dep = one(docs, "Deployment", where)
    svc = one(docs, "Service", where)
    if not dep or not svc:
        return
    pod = dep["spec"]["template"]
    c = gateway_container(dep)
    env = env_map(c)
    # 3. env names are the binary's.
    for name in env:
        check(name in binary_env, f"{where}: env {name} is not read by the binary (not in --help)")
    check(len(env) == len(c.get("env", [])), f"{where}: an env name is set twice")
    # 4. ports.
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    check(ports.get("grpc") == grpc_port, f"{where}: containerPort grpc {ports.get('grpc')} != {grpc_port}")
    check(ports.get("metrics") == metrics_port, f"{where}: containerPort metrics {ports.get('metrics')} != {metrics_port}")
    check(ports.get("health") == health_port, f"{where}: containerPort health {ports.get('health')} != {health_port}")
    check(env.get("PROVE_GATEWAY_LISTEN", {}).get("value") == f"0.0.0.0:{grpc_port}", f"{where}: PROVE_GATEWAY_LISTEN")
    check(env.get("PROVE_GATEWAY_METRICS_LISTEN", {}).get("value") == f"0.0.0.0:{metrics_port}", f"{where}: PROVE_GATEWAY_METRICS_LISTEN")
    check(env.get("PROVE_GATEWAY_HEALTH_LISTEN", {}).get("value") == f"0.0.0.0:{health_port}", f"{where}: PROVE_GATEWAY_HEALTH_LISTEN")
    # The kubelet's gRPC probes cannot speak TLS: they go to the plaintext health port.
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        p = c.get(probe)
        check(p is not None, f"{where}: no {probe}")
        if p:
            check(p.get("grpc", {}).get("port") == health_port, f"{where}: {probe} is not a gRPC probe on the health port {health_port}")
    check(c["readinessProbe"]["grpc"].get("service", "") == "", f"{where}: readiness must probe the overall service \"\"")
    ann = pod["metadata"].get("annotations") or {}
    if "prometheus.io/port" in ann:
        check(ann["prometheus.io/port"] == str(metrics_port), f"{where}: prometheus.io/port {ann['prometheus.io/port']}")
    sp = {p["name"]: p for p in svc["spec"]["ports"]}
    check("grpc" in sp and sp["grpc"].get("appProtocol") == "grpc" and sp["grpc"]["targetPort"] == "grpc",
          f"{where}: Service port `grpc` with appProtocol grpc targeting the grpc container port")
    check("metrics" in sp and sp["metrics"]["targetPort"] == "metrics", f"{where}: Service port `metrics`")
    # 5. grace period vs drain timeout.
    drain = env.get("PROVE_GATEWAY_DRAIN_TIMEOUT", {}).get("value", "")
    check(re.fullmatch(r"\d+s", drain or "") is not None, f"{where}: PROVE_GATEWAY_DRAIN_TIMEOUT {drain!r} is not whole seconds")
    if re.fullmatch(r"\d+s", drain or ""):
        sleep = (c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}) or {}).get("seconds", 0)
        delay_raw = env.get("PROVE_GATEWAY_SHUTDOWN_DELAY", {}).get("value", "0s")
        check(re.fullmatch(r"\d+s", delay_raw) is not None, f"{where}: PROVE_GATEWAY_SHUTDOWN_DELAY {delay_raw!r} is not whole seconds")
        delay = int(delay_raw[:-1]) if re.fullmatch(r"\d+s", delay_raw) else 0
        grace = pod["spec"]["terminationGracePeriodSeconds"]
        check(grace > sleep + delay + int(drain[:-1]), f"{where}: terminationGracePeriodSeconds {grace} <= preStop {sleep} + delay {delay} + drain {drain}")
        if values:
            check(delay == values.get("delay", 5), f"{where}: shutdown delay {delay}s != {values.get('delay', 5)}s")
            want = values.get("sleep", 0) + values.get("delay", 5) + values["drain"] + values["margin"]
            check(int(drain[:-1]) == values["drain"], f"{where}: drain {drain} != {values['drain']}s")
            check(grace == want, f"{where}: terminationGracePeriodSeconds {grace} != {want}")
    # 6. hardening.
    sc, psc = c.get("securityContext", {}), pod["spec"].get("securityContext", {})
    check(sc.get("runAsNonRoot") is True or psc.get("runAsNonRoot") is True, f"{where}: runAsNonRoot")
    check(sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem")
    check(sc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation")
    check("ALL" in (sc.get("capabilities", {}).get("drop") or []), f"{where}: capabilities drop ALL")
    check((sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", f"{where}: seccompProfile RuntimeDefault")
    # File mode: the Secret is a volume and only *_FILE names carry credentials.
    if any(n.endswith("_CLIENT_ID_FILE") for n in env):
        check(not any(re.fullmatch(r"PROVE_(UNIFY_|VERIFY_)?CLIENT_(ID|SECRET)", n) for n in env),
              f"{where}: file mode but a credential is in the environment")
    # Every file the gateway is told to read is a key of a mounted volume.
    for n, e in env.items():
        if n.endswith("_FILE"):
            check(file_source(pod["spec"], c, e.get("value", "")) is not None,
                  f"{where}: {n}={e.get('value')} is not a file of a mounted volume")
    # Whole directories only: the kubelet never updates a subPath mount, so a renewed
    # certificate or an edited callers file would never reach the gateway.
    for m in c.get("volumeMounts", []):
        check("subPath" not in m and "subPathExpr" not in m, f"{where}: volume {m['name']} is mounted with subPath")
        check(m.get("readOnly") is True, f"{where}: volume {m['name']} is not mounted readOnly")
    tls_env = [n for n in ("PROVE_GATEWAY_TLS_CERT_FILE", "PROVE_GATEWAY_TLS_KEY_FILE") if n in env]
    check(len(tls_env) in (0, 2), f"{where}: only one of the TLS certificate and key files is set")
    check("PROVE_GATEWAY_CLIENT_CA_FILE" not in env or tls_env, f"{where}: a client CA (mTLS) without TLS")
    # The helm test hook checks gRPC health through the Service: on the health port always,
    # and on the gRPC port when it is plaintext.
    tests = [d for d in docs if (d["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"]
    check(len(tests) == 1, f"{where}: expected one helm test hook")
    for t in tests:
        script = " ".join(t["spec"]["containers"][0].get("command", []))
        check("grpc.health.v1.Health/Check" in script, f"{where}: helm test does not call Health/Check")
    if tests:
        check("health" in sp and sp["health"]["targetPort"] == "health",
              f"{where}: the helm test needs a Service port `health` targeting the health container port")
        host = f"{svc['metadata']['name']}.identity.svc"
        targets = test_targets(docs)
        if "health" in sp:
            check(f"{host}:{sp['health']['port']}" in targets, f"{where}: helm test does not check the health port ({targets})")
        check((f"{host}:{sp['grpc']['port']}" in targets) == (not tls_env),
              f"{where}: helm test must check the gRPC port exactly when it is plaintext ({targets})")
    return env

# cert-manager.io/v1 CertificateSpec field names: kubeconform has no schema for the CRD, so a
# misspelt field would otherwise only surface when the cluster rejects it.
CERT_SPEC_FIELDS = {"secretName", "secretTemplate", "issuerRef", "dnsNames", "ipAddresses", "uris",
    "emailAddresses", "commonName", "subject", "duration", "renewBefore", "renewBeforePercentage",
    "usages", "privateKey", "isCA", "keystores", "literalSubject", "otherNames", "encodeUsagesInRequest",
    "revisionHistoryLimit", "additionalOutputFormats", "nameConstraints", "signatureAlgorithm"}

def sources(path, where):
    """The Deployment's file env vars resolved to (kind, name, key), and the rendered docs."""
    docs = load(path)
    dep = one(docs, "Deployment", where)
    pod = dep["spec"]["template"]["spec"]
    c = gateway_container(dep)
    return {n: file_source(pod, c, e.get("value", "")) for n, e in env_map(c).items() if n.endswith("_FILE")}, docs

for f in scenarios:
    name = os.path.basename(f)[:-5]
    values = yaml.safe_load(open(f)) or {}
    g = values.get("gateway", {})
    expect = {"drain": g.get("drainTimeoutSeconds", 20), "margin": g.get("terminationGraceMarginSeconds", 10),
              "sleep": g.get("preStopSleepSeconds", 0), "delay": g.get("shutdownDelaySeconds", 5)}
    rendered = os.path.join(work, f"{name}-{latest}.yaml")
    env = check_manifest(rendered, f"ci/{name}.yaml", values=expect)
    if env is None:
        continue
    files, docs = sources(rendered, f"ci/{name}.yaml")
    # The profile: development on the simulator or when stated, production otherwise.
    simulated = (values.get("simulator") or {}).get("enabled", False)
    want_profile = "development" if simulated else values.get("profile", "production")
    profile = env.get("PROVE_GATEWAY_PROFILE", {}).get("value")
    check(profile == want_profile, f"ci/{name}.yaml: PROVE_GATEWAY_PROFILE is {profile!r}, want {want_profile!r}")
    check(("PROVE_BASE_URL" in env) != simulated, f"ci/{name}.yaml: PROVE_BASE_URL must be set exactly when the simulator is off")
    if profile == "production":
        check(env.get("PROVE_GATEWAY_REFLECTION", {}).get("value", "false") == "false",
              f"ci/{name}.yaml: production with reflection on")
        check("PROVE_GATEWAY_TLS_CERT_FILE" in env and ("PROVE_GATEWAY_CLIENT_CA_FILE" in env or "PROVE_GATEWAY_CALLERS_FILE" in env),
              f"ci/{name}.yaml: production without TLS or without authenticated callers")
    if name == "production-values":
        check(env.get("PROVE_BASE_URL", {}).get("value") == "prod-us", "production: PROVE_BASE_URL is not prod-us")
        redis = env.get("PROVE_GATEWAY_REDIS_URL", {}).get("valueFrom", {}).get("secretKeyRef", {})
        check(redis.get("name") == "prove-gateway-redis", "production: several replicas without PROVE_GATEWAY_REDIS_URL from its Secret")
        # mTLS with a cert-manager certificate, and a callers file.
        certs = [d for d in docs if d["kind"] == "Certificate"]
        check(len(certs) == 1, f"production: expected one cert-manager Certificate, found {len(certs)}")
        for cert in certs:
            spec = cert["spec"]
            check(cert["apiVersion"] == "cert-manager.io/v1", "production: Certificate is not cert-manager.io/v1")
            check(set(spec) <= CERT_SPEC_FIELDS, f"production: Certificate has unknown fields {set(spec) - CERT_SPEC_FIELDS}")
            check(spec.get("issuerRef", {}).get("name") == "identity-ca", "production: Certificate issuerRef is not identity-ca")
            check("prove-gateway.identity.svc" in spec.get("dnsNames", []), f"production: Certificate dnsNames {spec.get('dnsNames')} lack the Service name")
            check(spec.get("duration") == "2160h" and spec.get("renewBefore") == "360h", "production: Certificate duration/renewBefore")
            check("server auth" in spec.get("usages", []), "production: Certificate lacks the server auth usage")
            for n, key in (("PROVE_GATEWAY_TLS_CERT_FILE", "tls.crt"), ("PROVE_GATEWAY_TLS_KEY_FILE", "tls.key"),
                           ("PROVE_GATEWAY_CLIENT_CA_FILE", "ca.crt")):
                check(files.get(n) == ("secret", spec.get("secretName"), key),
                      f"production: {n} comes from {files.get(n)}, not {key} of the Certificate's Secret {spec.get('secretName')}")
        check(files.get("PROVE_GATEWAY_CALLERS_FILE") == ("secret", "prove-gateway-callers", "callers.yaml"),
              f"production: callers file from {files.get('PROVE_GATEWAY_CALLERS_FILE')}")
        # Left unset, so the production profile's default (off) decides.
        check("PROVE_GATEWAY_REFLECTION" not in env, "production: PROVE_GATEWAY_REFLECTION is set; production-values leaves it to the profile")
    if name == "mtls-values":
        # The existing TLS Secret gives the certificate, its key and the client CA; the callers
        # Secret gives the callers file; all as files of directory mounts.
        for n, want in (("PROVE_GATEWAY_TLS_CERT_FILE", ("secret", "prove-gateway-tls", "tls.crt")),
                        ("PROVE_GATEWAY_TLS_KEY_FILE", ("secret", "prove-gateway-tls", "tls.key")),
                        ("PROVE_GATEWAY_CLIENT_CA_FILE", ("secret", "prove-gateway-tls", "ca.crt")),
                        ("PROVE_GATEWAY_CALLERS_FILE", ("secret", "prove-gateway-callers", "callers.yaml"))):
            check(files.get(n) == want, f"mtls: {n} comes from {files.get(n)}, want {want}")
        check(env.get("PROVE_GATEWAY_UNKNOWN_SESSIONS", {}).get("value") == "refuse", "mtls: PROVE_GATEWAY_UNKNOWN_SESSIONS is not refuse")
        check(not [d for d in docs if d["kind"] == "Certificate"], "mtls: a Certificate is rendered although cert-manager is off")
        np = one(docs, "NetworkPolicy", "mtls")
        if np:
            rules = {r["ports"][0]["port"]: r for r in np["spec"]["ingress"]}
            check(rules.get("grpc", {}).get("from"), "mtls: the NetworkPolicy lets any source reach the gRPC port")
            check("health" in rules, "mtls: the NetworkPolicy has no rule for the health port (the probes would fail)")
    if name == "callers-inline-values":
        # The chart-created Secret holds a callers file in the gateway's format.
        src = files.get("PROVE_GATEWAY_CALLERS_FILE")
        secret = next((d for d in docs if d["kind"] == "Secret" and src and d["metadata"]["name"] == src[1]), None)
        check(secret is not None, f"callers-inline: the callers file's Secret {src} is not rendered")
        if secret:
            parsed = yaml.safe_load(secret.get("stringData", {}).get(src[2], "")) or {}
            callers = parsed.get("callers") or []
            check([c.get("name") for c in callers] == ["checkout", "onboarding"], f"callers-inline: callers {callers}")
            check(all(re.fullmatch(r"[0-9a-f]{64}", t) for c in callers for t in c.get("token_sha256", [])),
                  "callers-inline: a token_sha256 is not 64 hex characters")
        check("PROVE_GATEWAY_CLIENT_CA_FILE" not in env and "PROVE_GATEWAY_TLS_CERT_FILE" in env,
              "callers-inline: expected TLS without client certificates")
    if name == "simulator-values":
        check(profile == "development", "simulator: PROVE_GATEWAY_PROFILE is not development")
        check(not any(n.startswith("PROVE_GATEWAY_TLS") or n in ("PROVE_GATEWAY_CLIENT_CA_FILE", "PROVE_GATEWAY_CALLERS_FILE")
                      for n in env), "simulator: TLS or callers set although the defaults have neither")
    if name == "redis-limiter-values":
        # The deprecated prove.rateLimit.redisUrl keeps rendering the alias the binary keeps.
        check(env.get("PROVE_RATE_LIMIT_REDIS_URL", {}).get("value") == "redis://redis-master.redis.svc:6379/0",
              "redis-limiter: the deprecated prove.rateLimit.redisUrl no longer reaches PROVE_RATE_LIMIT_REDIS_URL")
        check("PROVE_GATEWAY_REDIS_URL" not in env, "redis-limiter: both Redis variables set")
    if env is not None and name == "otel-values":
        check("OTEL_EXPORTER_OTLP_ENDPOINT" in env, "otel: no OTEL_EXPORTER_OTLP_ENDPOINT")
check_manifest(os.path.join(work, "drain45.yaml"), "drainTimeoutSeconds=45", values={"drain": 45, "margin": 7})
check_manifest(os.path.join(work, "prestop.yaml"), "preStopSleepSeconds=5", values={"drain": 20, "margin": 10, "sleep": 5})
check_manifest(os.path.join(work, "ports.yaml"), "ports 6000/6001/6002", grpc_port=6000, metrics_port=6001, health_port=6002)
docs = load(os.path.join(work, "notests.yaml"))
svc = one(docs, "Service", "tests.enabled=false")
check(svc and "health" not in {p["name"] for p in svc["spec"]["ports"]}, "tests.enabled=false: the Service still exposes the health port")
check(test_targets(docs) is None, "tests.enabled=false: a helm test Pod is rendered")

if errors:
    for e in errors:
        print(f"helm-check: FAIL: {e}", file=sys.stderr)
    sys.exit(1)
print(f"helm-check: env names, ports, grace period and hardening ok ({len(binary_env)} env names in --help)")
PY

# --- 6b. the binary accepts the values the chart renders ------------------------------------
# Each scenario's env, as literal values, is given to the real binary: it must still be serving
# after 3 s (a bad duration, enum or number makes it exit at once) and must exit within the
# Pod's terminationGracePeriodSeconds after SIGTERM. Listen addresses move to loopback and Redis
# is left out (none is reachable). Prove's URL becomes an https URL on a closed loopback port and
# the credentials dummy files (or values, in env mode): the gateway asks Prove for nothing before
# a call, and the production profile refuses to start without them, so a production scenario
# starts exactly when the chart gave the binary everything production requires.
# Files the chart mounts from Secrets are made here instead: a CA, a server certificate for
# localhost and a client certificate (openssl, as on Debian), and a callers file (the rendered
# one for callers.inline, else one naming the client certificate's identity).
command -v openssl >/dev/null || fail "openssl is needed (apt-get install openssl)"
command -v curl >/dev/null || fail "curl is needed (apt-get install curl)"
pki="$work/pki"
mkdir -p "$pki"
(
  cd "$pki"
  ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
  ec ca.key
  openssl req -x509 -new -key ca.key -subj "/CN=helm-check CA" -days 2 -out ca.crt \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
  ec server.key
  openssl req -new -key server.key -subj "/CN=helm-check-server" -out server.csr 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out server.crt 2>/dev/null
  ec client.key
  openssl req -new -key client.key -subj "/CN=helm-check-client" -out client.csr 2>/dev/null
  printf 'subjectAltName=URI:spiffe://helm-check/ns/identity/sa/client\nextendedKeyUsage=clientAuth\n' >client.ext
  openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile client.ext -out client.crt 2>/dev/null
  cat >callers.yaml <<'YAML'
callers:
  - name: helm-check
    identities: ["spiffe://helm-check/ns/identity/sa/client"]
    allow: ["prove.gateway.v1.UnifyService/*", "prove.gateway.v1.VerifyService/*"]
    weight: 1
YAML
) || fail "openssl could not make the test certificates"
# One empty gRPC message (flag 0, length 0): the body of a Health/Check for the overall service.
printf '\0\0\0\0\0' >"$work/health-request"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# health_check URL [curl TLS args...]: grpc.health.v1.Health/Check over HTTP/2; the answer
# 00 00000002 08 01 is one message holding status SERVING.
health_check() {
  local url="$1"; shift
  curl -s --max-time 3 --http2-prior-knowledge -H 'content-type: application/grpc' -H 'te: trailers' \
    --data-binary @"$work/health-request" "$@" "$url/grpc.health.v1.Health/Check" 2>/dev/null \
    | od -An -tx1 | tr -d ' \n' | grep -qx '00000000020801'
}
smoke_pid=""
trap 'if [ -n "$smoke_pid" ]; then kill -KILL "$smoke_pid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
for f in "${scenarios[@]}"; do
  name="$(basename "$f" .yaml)"
  grpc_port="$(free_port)"
  health_port="$(free_port)"
  while [ "$health_port" = "$grpc_port" ]; do health_port="$(free_port)"; done
  python3 - "$work/$name-$latest.yaml" "$pki" "$grpc_port" "$health_port" >"$work/smoke.env" <<'PY'
import os, sys, yaml
rendered, pki, grpc_port, health_port = sys.argv[1:]
skip = ("PROVE_RATE_LIMIT_REDIS_URL", "PROVE_GATEWAY_REDIS_URL")
# Port 1 on loopback: nothing listens there, so nothing real is ever reached.
unreachable_prove = "https://127.0.0.1:1"
docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
listen = {"PROVE_GATEWAY_LISTEN": f"127.0.0.1:{grpc_port}", "PROVE_GATEWAY_HEALTH_LISTEN": f"127.0.0.1:{health_port}",
          "PROVE_GATEWAY_METRICS_LISTEN": "127.0.0.1:0"}
files = {"PROVE_GATEWAY_TLS_CERT_FILE": "server.crt", "PROVE_GATEWAY_TLS_KEY_FILE": "server.key",
         "PROVE_GATEWAY_CLIENT_CA_FILE": "ca.crt", "PROVE_GATEWAY_CALLERS_FILE": "callers.yaml"}
# A chart-created callers Secret is what the gateway would read: use it instead of the sample.
for d in docs:
    if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-callers"):
        for content in (d.get("stringData") or {}).values():
            open(os.path.join(pki, f"callers-{os.getpid()}.yaml"), "w").write(content)
            files["PROVE_GATEWAY_CALLERS_FILE"] = f"callers-{os.getpid()}.yaml"
for d in docs:
    if d["kind"] != "Deployment":
        continue
    spec = d["spec"]["template"]["spec"]
    print(f"GRACE={spec['terminationGracePeriodSeconds']}")
    c = next(c for c in spec["containers"] if c["name"] == "prove-gateway")
    for e in c.get("env", []):
        n = e["name"]
        if n in skip:
            continue
        if "CLIENT_ID" in n or "CLIENT_SECRET" in n:
            # A Secret's key, as a file of the mounted volume or a secretKeyRef value.
            dummy = f"helm-check-{n.lower().replace('_file', '')}"
            if n.endswith("_FILE"):
                path = os.path.join(pki, os.path.basename(e["value"]))
                open(path, "w").write(dummy)
                print(f"{n}={path}")
            else:
                print(f"{n}={dummy}")
            continue
        if "value" not in e:
            continue
        if n == "PROVE_BASE_URL":
            print(f"{n}={unreachable_prove}")
            continue
        v = listen.get(n) or (os.path.join(pki, files[n]) if n in files else e["value"])
        print(f"{n}={v}")
PY
  grace="$(sed -n 's/^GRACE=//p' "$work/smoke.env")"
  mapfile -t smoke_env < <(grep -v '^GRACE=' "$work/smoke.env")
  tls=""; mtls=""
  profile="$(sed -n 's/^PROVE_GATEWAY_PROFILE=//p' "$work/smoke.env")"
  grep -q '^PROVE_GATEWAY_TLS_CERT_FILE=' "$work/smoke.env" && tls=1
  grep -q '^PROVE_GATEWAY_CLIENT_CA_FILE=' "$work/smoke.env" && mtls=1
  env -i PATH="$PATH" "${smoke_env[@]}" "$binary" >"$work/smoke.log" 2>&1 &
  smoke_pid=$!
  # What the kubelet's probes see: plaintext health on the health port (polled: the binary
  # may take a moment to bind).
  served=""
  for _ in $(seq 1 30); do
    kill -0 "$smoke_pid" 2>/dev/null || break
    if health_check "http://127.0.0.1:$health_port"; then served=1; break; fi
    sleep 0.3
  done
  sleep 3
  if ! kill -0 "$smoke_pid" 2>/dev/null; then
    wait "$smoke_pid" || true
    smoke_pid=""
    cat "$work/smoke.log" >&2
    fail "the binary exited at once with the env of ci/$name.yaml (a value it cannot parse?)"
  fi
  if [ -z "$served" ]; then
    kill -KILL "$smoke_pid"; smoke_pid=""
    cat "$work/smoke.log" >&2
    fail "ci/$name.yaml: no plaintext grpc.health.v1 SERVING on PROVE_GATEWAY_HEALTH_LISTEN, where the probes go"
  fi
  # The gRPC port: plaintext, TLS with the mounted certificate, or mTLS refusing a client
  # without a certificate.
  grpc_url="https://localhost:$grpc_port"
  how=""
  if [ -z "$tls" ]; then
    health_check "http://127.0.0.1:$grpc_port" && how="plaintext"
  elif [ -z "$mtls" ]; then
    health_check "$grpc_url" --cacert "$pki/ca.crt" && how="TLS"
  elif health_check "$grpc_url" --cacert "$pki/ca.crt" --cert "$pki/client.crt" --key "$pki/client.key"; then
    # Refused at the handshake: curl gets no HTTP answer at all without a client certificate.
    if curl -s --max-time 3 --http2 --cacert "$pki/ca.crt" -o /dev/null "$grpc_url/" 2>/dev/null; then
      how="mTLS-but-accepts-anyone"
    else
      how="mTLS"
    fi
  fi
  case "$how" in
    plaintext|TLS|mTLS) ;;
    *)
      kill -KILL "$smoke_pid"; smoke_pid=""
      cat "$work/smoke.log" >&2
      fail "ci/$name.yaml: the gRPC port does not serve health as configured (tls=${tls:-no} mtls=${mtls:-no}; got ${how:-nothing})"
      ;;
  esac
  kill -TERM "$smoke_pid"
  waited=0
  while kill -0 "$smoke_pid" 2>/dev/null && [ "$waited" -lt "$grace" ]; do sleep 1; waited=$((waited + 1)); done
  if kill -0 "$smoke_pid" 2>/dev/null; then
    kill -KILL "$smoke_pid"; smoke_pid=""
    fail "ci/$name.yaml: the binary did not exit within terminationGracePeriodSeconds=$grace s after SIGTERM"
  fi
  rc=0; wait "$smoke_pid" || rc=$?
  smoke_pid=""
  # The simulator announces itself in the log, and only the simulator.
  if grep -q '^PROVE_BASE_URL=' "$work/smoke.env"; then
    if grep -q 'answers are SIMULATED' "$work/smoke.log"; then
      fail "ci/$name.yaml: Prove is configured, yet the binary says its answers are simulated"
    fi
  else
    grep -q 'answers are SIMULATED' "$work/smoke.log" || { cat "$work/smoke.log" >&2; fail "ci/$name.yaml: on the simulator, the binary does not warn that answers are simulated"; }
  fi
  # No call is in flight, so the drain is clean and the exit code must be 0: anything else is
  # what Kubernetes would record as a failed Pod on every rollout.
  if [ "$rc" -ne 0 ]; then
    cat "$work/smoke.log" >&2
    fail "ci/$name.yaml: after SIGTERM with nothing in flight the binary exited with $rc, not 0"
  fi
  step "binary accepts ci/$name.yaml's env (${#smoke_env[@]} variables, profile ${profile:-unset}): health on the probes' port, $how on the gRPC port; after SIGTERM it exited with 0 within ${waited}s (grace ${grace}s)"
done

# --- 7. the schema and the chart reject bad values -------------------------------------------
# must_fail "why" "expected message (grep -E)" helm-args...
must_fail() {
  local why="$1" pattern="$2"; shift 2
  if render "$work/bad.yaml" "$latest" "$@" 2>"$work/bad.err"; then
    fail "helm template $* rendered, but should fail ($why)"
  fi
  grep -Eq "$pattern" "$work/bad.err" || { cat "$work/bad.err" >&2; fail "helm template $* failed, but not with /$pattern/ ($why)"; }
  step "rejected as expected: $* ($why)"
}
schema_msg="values don't meet the specifications of the schema"
must_fail "replicaCount must be an integer" "$schema_msg" --set replicaCount=abc
must_fail "image.tag must be a string" "$schema_msg" --set image.tag=123
must_fail "unknown top-level key" "$schema_msg" --set nonsense=1
must_fail "misspelt nested key" "$schema_msg" --set credentials.shared.clientID=x
must_fail "logFormat enum" "$schema_msg" --set gateway.logFormat=xml
must_fail "unknown Prove environment" "$schema_msg" --set prove.baseUrl=prod-mars
must_fail "duration syntax" "$schema_msg" --set prove.requestTimeout=ten
must_fail "sampler enum" "$schema_msg" --set otel.sampler=sometimes
must_fail "securityContext typo" "$schema_msg" --set securityContext.readOnlyRootFileSystem=true
must_fail "privileged port" "$schema_msg" --set gateway.grpcPort=80
must_fail "Prove without credentials" "there are no credentials" --set prove.baseUrl=prod-us
must_fail "credentials on the simulator" "the simulator takes no credentials" "${sim[@]}" --set credentials.existingSecret=s
must_fail "half a chart-created pair" "needs both a client ID and a client secret" \
  --set prove.baseUrl=uat-us --set credentials.shared.clientId=id
must_fail "both PDB fields" "set only one of minAvailable and maxUnavailable" "${sim[@]}" \
  --set podDisruptionBudget.enabled=true --set podDisruptionBudget.minAvailable=1
must_fail "HPA without requests" "autoscaling needs resources.requests" "${sim[@]}" --set autoscaling.enabled=true
must_fail "preStop sleep on old Kubernetes" "needs Kubernetes >= 1.30" "${sim[@]}" --set gateway.preStopSleepSeconds=5 --kube-version 1.29.0
must_fail "below the chart's kubeVersion" "incompatible with Kubernetes" --kube-version 1.26.0
must_fail "unknownSessions enum" "$schema_msg" --set gateway.unknownSessions=drop
must_fail "client CA source enum" "$schema_msg" --set tls.clientCA.source=file
must_fail "a token in clear instead of its hash" "$schema_msg" --set 'callers.inline[0].name=a' \
  --set 'callers.inline[0].allow[0]=prove.gateway.v1.UnifyService/*' --set 'callers.inline[0].token_sha256[0]=secret-token'
must_fail "a caller without allow" "$schema_msg" --set 'callers.inline[0].name=a' --set 'callers.inline[0].identities[0]=spiffe://x/a'
must_fail "a caller nobody can be (no identity, no token)" "$schema_msg" --set 'callers.inline[0].name=a' \
  --set 'callers.inline[0].allow[0]=prove.gateway.v1.UnifyService/*'
must_fail "a reserved caller name" "$schema_msg" --set 'callers.inline[0].name=anonymous' \
  --set 'callers.inline[0].identities[0]=spiffe://x/a' --set 'callers.inline[0].allow[0]=prove.gateway.v1.UnifyService/*'
must_fail "misspelt cert-manager key" "$schema_msg" --set tls.certManager.renewbefore=1h
must_fail "TLS without a certificate" "tls.enabled needs a certificate" "${sim[@]}" --set tls.enabled=true
must_fail "TLS settings while TLS is off" "need tls.enabled: true" "${sim[@]}" --set tls.existingSecret=s
must_fail "mTLS without TLS" "need tls.enabled: true" "${sim[@]}" --set tls.clientCA.enabled=true
must_fail "both a Secret and cert-manager" "set only one of tls.existingSecret and tls.certManager.enabled" "${sim[@]}" \
  --set tls.enabled=true --set tls.existingSecret=s --set tls.certManager.enabled=true --set tls.certManager.issuerRef.name=ca
must_fail "cert-manager without an issuer" "needs tls.certManager.issuerRef.name" "${sim[@]}" \
  --set tls.enabled=true --set tls.certManager.enabled=true
must_fail "client CA from a ConfigMap without its name" "set tls.clientCA.name" "${sim[@]}" \
  --set tls.enabled=true --set tls.existingSecret=s --set tls.clientCA.enabled=true --set tls.clientCA.source=configMap
must_fail "two callers sources" "set only one of callers.existingSecret and callers.inline" "${sim[@]}" \
  --set callers.existingSecret=c --set 'callers.inline[0].name=a' --set 'callers.inline[0].identities[0]=spiffe://x/a' \
  --set 'callers.inline[0].allow[0]=prove.gateway.v1.UnifyService/*'
must_fail "deprecated and new Redis values" "deprecated and redis.url/urlSecret is set too" "${sim[@]}" \
  --set redis.url=redis://r:6379 --set prove.rateLimit.redisUrl=redis://r:6379
must_fail "health on the gRPC port" "gateway.healthPort must differ" "${sim[@]}" --set gateway.healthPort=50051

# The profile (issue 16): the defaults are production, which never quietly runs the simulator
# and needs what the binary's production profile needs, all named in one message.
minimal=(-f "$chart/ci/production-minimal-values.yaml")
must_fail "the default values, without prove.baseUrl" "$no_base_url"
must_fail "profile development without prove.baseUrl still needs the simulator switched on" "$no_base_url" \
  --set profile=development
must_fail "the simulator and Prove at once" "simulator.enabled and prove.baseUrl are both set" "${minimal[@]}" \
  --set simulator.enabled=true --set credentials.existingSecret=
must_fail "production without TLS" "profile production needs: tls.enabled: true with tls.existingSecret or tls.certManager.enabled" \
  "${minimal[@]}" --set tls.enabled=false --set tls.existingSecret=
must_fail "production without authenticated callers" "profile production needs: tls.clientCA.enabled: true, or callers.existingSecret or callers.inline" \
  "${minimal[@]}" --set callers.existingSecret=
must_fail "production with plain http to Prove" "profile production needs: prove.baseUrl must be https" \
  "${minimal[@]}" --set prove.baseUrl=http://prove-proxy.identity.svc:8080
must_fail "production missing everything: one message names it all" \
  "needs: prove.baseUrl must be https[^;]*; tls.enabled: true[^;]*; tls.clientCA.enabled: true, or callers" \
  --set prove.baseUrl=http://prove-proxy --set credentials.existingSecret=s
must_fail "profile enum" "$schema_msg" --set profile=staging
must_fail "misspelt simulator key" "$schema_msg" --set simulator.enable=true
# What production refuses, development allows: a UAT install through a plain-http proxy.
render "$work/dev.yaml" "$latest" --set profile=development --set prove.baseUrl=http://prove-proxy.identity.svc:8080 \
  --set credentials.existingSecret=s 2>"$work/dev.err" \
  || { cat "$work/dev.err" >&2; fail "profile development with an http Prove URL, no TLS and no callers does not render"; }
grep -A1 'name: PROVE_GATEWAY_PROFILE' "$work/dev.yaml" | grep -q 'value: "development"' \
  || fail "profile=development does not reach PROVE_GATEWAY_PROFILE"
step "rendered as expected: profile development with http:// to Prove, no TLS, no callers"

# --- 8. NOTES -------------------------------------------------------------------------------
# `helm template` does not render NOTES.txt, and `helm install --dry-run` needs a cluster. So a
# copy of the chart gets NOTES.txt as a named template, rendered into a ConfigMap's string.
notes_chart="$work/notes/prove-gateway"
mkdir -p "$work/notes"
cp -r "$chart" "$notes_chart"
{ echo '{{- define "notes-check" -}}'; cat "$chart/templates/NOTES.txt"; echo '{{- end }}'; } >"$notes_chart/templates/_notes-check.tpl"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes-check\ndata:\n  notes: {{ include "notes-check" . | toJson }}\n' \
  >"$notes_chart/templates/notes-check.yaml"
for f in "${scenarios[@]}"; do
  name="$(basename "$f" .yaml)"
  "$HELM" template prove-gateway "$notes_chart" --namespace identity -f "$f" --show-only templates/notes-check.yaml \
    | python3 -c 'import sys, yaml; print(yaml.safe_load(sys.stdin)["data"]["notes"])' >"$work/notes.txt" \
    || fail "NOTES of ci/$name.yaml do not render"
  simulated="$(python3 -c 'import sys, yaml; print(((yaml.safe_load(open(sys.argv[1])) or {}).get("simulator") or {}).get("enabled", False))' "$f")"
  if [ "$simulated" = True ]; then
    grep -q 'WARNING: ANSWERS ARE SIMULATED' "$work/notes.txt" && grep -q 'simulator.enabled is true' "$work/notes.txt" \
      || { cat "$work/notes.txt" >&2; fail "ci/$name.yaml runs the simulator, but its NOTES do not warn that answers are simulated"; }
  elif grep -qi 'simulated' "$work/notes.txt"; then
    cat "$work/notes.txt" >&2; fail "ci/$name.yaml reaches Prove, but its NOTES say answers are simulated"
  fi
  step "NOTES of ci/$name.yaml: $([ "$simulated" = True ] && echo "warn that answers are simulated" || echo "no simulator warning")"
done

step "all checks passed"
