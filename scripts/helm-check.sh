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
#     version (ServiceMonitor, a CRD, is the only kind skipped).
#  3. Every environment variable name the chart sets on the gateway container is one the
#     binary reads: it must appear as `[env: NAME...]` in `BINARY --help`.
#  4. Ports agree with the binary's defaults (50051 gRPC, 9090 metrics, from `--help`): the
#     container ports, PROVE_GATEWAY_LISTEN / _METRICS_LISTEN, the gRPC probes, the Service's
#     `grpc` port (appProtocol grpc) and the Prometheus annotation.
#  5. terminationGracePeriodSeconds = preStop sleep + drain timeout + margin, and
#     PROVE_GATEWAY_DRAIN_TIMEOUT matches, for every scenario and for changed values.
#  6. The hardened securityContext is in place on every scenario, and in file mode no
#     credential reaches the environment.
#     The real binary starts with each scenario's env, and after SIGTERM exits 0 (a clean
#     drain: nothing is in flight) within the grace period.
#  7. Values of the wrong type, unknown keys and inconsistent settings make `helm template`
#     fail (non-zero exit, with the schema's or the chart's message).
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
"$HELM" lint --strict "$chart" >"$work/lint.log" 2>&1 || { cat "$work/lint.log" >&2; fail "helm lint --strict"; }
scenarios=("$chart"/ci/*-values.yaml)
[ ${#scenarios[@]} -ge 4 ] || fail "expected the ci/*-values.yaml scenarios, found ${#scenarios[@]}"
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
    # -strict: unknown fields are errors. ServiceMonitor is a CRD with no schema here.
    if ! "$KUBECONFORM" -strict -summary -skip ServiceMonitor -kubernetes-version "$kv" \
        -schema-location "$schema_location" "$out" >"$work/kc.log" 2>&1; then
      cat "$work/kc.log" >&2
      fail "kubeconform: ci/$name.yaml is not valid for Kubernetes $kv"
    fi
    # kubeconform skips what it has no schema for only when told; make sure nothing was.
    grep -q 'Errors: 0' "$work/kc.log" || { cat "$work/kc.log" >&2; fail "kubeconform errors for ci/$name.yaml"; }
    step "kubeconform ok: ci/$name.yaml on Kubernetes $kv ($(sed -n 's/.*Valid: \([0-9]*\).*/\1/p' "$work/kc.log") valid, ServiceMonitor skipped)"
  done
done

# --- 3-6. manifests against the binary -------------------------------------------------------
"$binary" --help >"$work/help.txt" 2>&1 || fail "$binary --help exited non-zero"
latest="${K8S_VERSIONS[-1]}"
# Changed timing values, to see the grace period follow the drain timeout.
render "$work/drain45.yaml" "$latest" --set gateway.drainTimeoutSeconds=45 --set gateway.terminationGraceMarginSeconds=7 \
  || fail "helm template with drainTimeoutSeconds=45"
render "$work/prestop.yaml" "$latest" --set gateway.preStopSleepSeconds=5 \
  || fail "helm template with preStopSleepSeconds=5"
render "$work/ports.yaml" "$latest" --set gateway.grpcPort=6000 --set gateway.metricsPort=6001 \
  || fail "helm template with other ports"

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

def check_manifest(path, where, grpc_port=50051, metrics_port=9090, values=None):
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
    check(env.get("PROVE_GATEWAY_LISTEN", {}).get("value") == f"0.0.0.0:{grpc_port}", f"{where}: PROVE_GATEWAY_LISTEN")
    check(env.get("PROVE_GATEWAY_METRICS_LISTEN", {}).get("value") == f"0.0.0.0:{metrics_port}", f"{where}: PROVE_GATEWAY_METRICS_LISTEN")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        p = c.get(probe)
        check(p is not None, f"{where}: no {probe}")
        if p:
            check(p.get("grpc", {}).get("port") == grpc_port, f"{where}: {probe} is not a gRPC probe on {grpc_port}")
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
        mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
        for n, e in env.items():
            if n.endswith("_FILE"):
                check(os.path.dirname(e["value"]) in mounts, f"{where}: {n}={e['value']} is not under a mounted volume")
    # The helm test hook checks gRPC health through the Service.
    tests = [d for d in docs if (d["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"]
    check(len(tests) == 1, f"{where}: expected one helm test hook")
    for t in tests:
        script = " ".join(t["spec"]["containers"][0].get("command", []))
        check("grpc.health.v1.Health/Check" in script, f"{where}: helm test does not call Health/Check")
    return env

for f in scenarios:
    name = os.path.basename(f)[:-5]
    values = yaml.safe_load(open(f)) or {}
    g = values.get("gateway", {})
    expect = {"drain": g.get("drainTimeoutSeconds", 20), "margin": g.get("terminationGraceMarginSeconds", 10),
              "sleep": g.get("preStopSleepSeconds", 0), "delay": g.get("shutdownDelaySeconds", 5)}
    env = check_manifest(os.path.join(work, f"{name}-{latest}.yaml"), f"ci/{name}.yaml", values=expect)
    if env is not None and name == "production-values":
        check(env.get("PROVE_BASE_URL", {}).get("value") == "prod-us", "production: PROVE_BASE_URL is not prod-us")
        check("PROVE_RATE_LIMIT_REDIS_URL" in env, "production: several replicas without PROVE_RATE_LIMIT_REDIS_URL")
    if env is not None and name == "redis-limiter-values":
        check("PROVE_RATE_LIMIT_REDIS_URL" in env, "redis-limiter: no PROVE_RATE_LIMIT_REDIS_URL")
    if env is not None and name == "otel-values":
        check("OTEL_EXPORTER_OTLP_ENDPOINT" in env, "otel: no OTEL_EXPORTER_OTLP_ENDPOINT")
check_manifest(os.path.join(work, "drain45.yaml"), "drainTimeoutSeconds=45", values={"drain": 45, "margin": 7})
check_manifest(os.path.join(work, "prestop.yaml"), "preStopSleepSeconds=5", values={"drain": 20, "margin": 10, "sleep": 5})
check_manifest(os.path.join(work, "ports.yaml"), "ports 6000/6001", grpc_port=6000, metrics_port=6001)

if errors:
    for e in errors:
        print(f"helm-check: FAIL: {e}", file=sys.stderr)
    sys.exit(1)
print(f"helm-check: env names, ports, grace period and hardening ok ({len(binary_env)} env names in --help)")
PY

# --- 6b. the binary accepts the values the chart renders ------------------------------------
# Each scenario's env, as literal values, is given to the real binary: it must still be serving
# after 3 s (a bad duration, enum or number makes it exit at once) and must exit within the
# Pod's terminationGracePeriodSeconds after SIGTERM. Listen addresses move to 127.0.0.1:0 and
# what needs the outside world (Prove's URL, credentials, Redis) is left out: none is reachable.
smoke_pid=""
trap 'if [ -n "$smoke_pid" ]; then kill -KILL "$smoke_pid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
for f in "${scenarios[@]}"; do
  name="$(basename "$f" .yaml)"
  python3 - "$work/$name-$latest.yaml" >"$work/smoke.env" <<'PY'
import sys, yaml
skip = ("PROVE_BASE_URL", "PROVE_RATE_LIMIT_REDIS_URL")
for d in yaml.safe_load_all(open(sys.argv[1])):
    if not d or d["kind"] != "Deployment":
        continue
    spec = d["spec"]["template"]["spec"]
    print(f"GRACE={spec['terminationGracePeriodSeconds']}")
    c = next(c for c in spec["containers"] if c["name"] == "prove-gateway")
    for e in c.get("env", []):
        n = e["name"]
        if "value" not in e or n in skip or "CLIENT_" in n:
            continue
        v = "127.0.0.1:0" if n in ("PROVE_GATEWAY_LISTEN", "PROVE_GATEWAY_METRICS_LISTEN") else e["value"]
        print(f"{n}={v}")
PY
  grace="$(sed -n 's/^GRACE=//p' "$work/smoke.env")"
  mapfile -t smoke_env < <(grep -v '^GRACE=' "$work/smoke.env")
  env -i PATH="$PATH" "${smoke_env[@]}" "$binary" >"$work/smoke.log" 2>&1 &
  smoke_pid=$!
  sleep 3
  if ! kill -0 "$smoke_pid" 2>/dev/null; then
    wait "$smoke_pid" || true
    smoke_pid=""
    cat "$work/smoke.log" >&2
    fail "the binary exited at once with the env of ci/$name.yaml (a value it cannot parse?)"
  fi
  kill -TERM "$smoke_pid"
  waited=0
  while kill -0 "$smoke_pid" 2>/dev/null && [ "$waited" -lt "$grace" ]; do sleep 1; waited=$((waited + 1)); done
  if kill -0 "$smoke_pid" 2>/dev/null; then
    kill -KILL "$smoke_pid"; smoke_pid=""
    fail "ci/$name.yaml: the binary did not exit within terminationGracePeriodSeconds=$grace s after SIGTERM"
  fi
  rc=0; wait "$smoke_pid" || rc=$?
  smoke_pid=""
  # No call is in flight, so the drain is clean and the exit code must be 0: anything else is
  # what Kubernetes would record as a failed Pod on every rollout.
  if [ "$rc" -ne 0 ]; then
    cat "$work/smoke.log" >&2
    fail "ci/$name.yaml: after SIGTERM with nothing in flight the binary exited with $rc, not 0"
  fi
  step "binary accepts ci/$name.yaml's env (${#smoke_env[@]} variables); after SIGTERM it exited with 0 within ${waited}s (grace ${grace}s)"
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
must_fail "credentials without Prove" "prove.baseUrl is empty" --set credentials.existingSecret=s
must_fail "half a chart-created pair" "needs both a client ID and a client secret" \
  --set prove.baseUrl=uat-us --set credentials.shared.clientId=id
must_fail "both PDB fields" "set only one of minAvailable and maxUnavailable" \
  --set podDisruptionBudget.enabled=true --set podDisruptionBudget.minAvailable=1
must_fail "HPA without requests" "autoscaling needs resources.requests" --set autoscaling.enabled=true
must_fail "preStop sleep on old Kubernetes" "needs Kubernetes >= 1.30" --set gateway.preStopSleepSeconds=5 --kube-version 1.29.0
must_fail "below the chart's kubeVersion" "incompatible with Kubernetes" --kube-version 1.26.0

step "all checks passed"
