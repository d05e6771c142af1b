#!/usr/bin/env bash
# Proves the generated client stubs work, in the languages callers use: generates them
# (scripts/gen-stubs.sh), starts the gateway on the embedded simulator with TLS and mTLS, and
# runs the Go (go test), Java (Maven + JUnit) and Python (pytest) example clients in examples/
# against it, each connecting with a client certificate. Each runs a Unify flow, a Verify,
# error cases whose google.rpc details (ErrorInfo, RetryInfo, BadRequest) and
# prove.gateway.v1.ProveError it unpacks, and a connection without a client certificate, which
# the gateway must refuse in the TLS handshake. There is no .NET SDK here, so the C# stubs are
# checked for the generated service classes only.
#
#   bash scripts/clients-test.sh
#
# The certificates are made here, fresh on every run, with openssl (Debian's `openssl`
# package): a CA, a server certificate for localhost and 127.0.0.1, and a client certificate
# whose identity is a SPIFFE URI SAN. The clients get them through PROVE_GATEWAY_CA_FILE,
# PROVE_GATEWAY_CLIENT_CERT_FILE and PROVE_GATEWAY_CLIENT_KEY_FILE (docs/clients.md).
#
# Needs cargo, go, java 17 + mvn, python3, node/npm, openssl and a C++ compiler (see
# gen-stubs.sh); first run downloads plugins and dependencies. Exits non-zero if any client or check fails, or if any
# test was skipped: a skipped test proves nothing, and a test that skips itself (a missing
# variable, an unreachable gateway) would otherwise pass the run unnoticed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

T0=$SECONDS
step() { printf '\n==> %s\n' "$*"; STEP_T0=$SECONDS; }
took() { printf '    (%ss)\n' "$((SECONDS - STEP_T0))"; }

RESULTS=() # "suite passed failed skipped"
FAILED_SUITES=()
record() { # suite rc passed failed skipped
  local suite=$1 rc=$2 passed=$3 failed=$4 skipped=$5
  if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ] || [ "$skipped" -ne 0 ]; then
    FAILED_SUITES+=("$suite")
    # A suite that could not run at all (build error, no tests) or only partly (skipped tests)
    # counts as at least one failure.
    [ "$failed" -eq 0 ] && failed=1
  fi
  RESULTS+=("$suite $passed $failed $skipped")
  printf '    %s: %s passed, %s failed, %s skipped (exit %s)\n' "$suite" "$passed" "$failed" "$skipped" "$rc"
}

step "stubs: scripts/gen-stubs.sh"
bash scripts/gen-stubs.sh
took

# --- C#: no .NET SDK here, so check the generated code has the messages and service classes ---
step "C#: generated code in gen/csharp"
cs_passed=0 cs_failed=0
cs_expect() { # file regex
  if grep -Eq "$2" "gen/csharp/$1" 2>/dev/null; then
    cs_passed=$((cs_passed + 1))
  else
    cs_failed=$((cs_failed + 1))
    echo "    missing in gen/csharp/$1: $2"
  fi
}
for svc in Unify Verify; do
  f=${svc}ServiceGrpc.cs
  cs_expect "$f" '^namespace Prove\.Gateway\.V1'
  cs_expect "$f" "public static partial class ${svc}Service\b"
  cs_expect "$f" "public partial class ${svc}ServiceClient : grpc::ClientBase<${svc}ServiceClient>"
  cs_expect "$f" "public abstract partial class ${svc}ServiceBase"
  cs_expect "$f" "AsyncUnaryCall<global::Prove\.Gateway\.V1\.${svc}Response> ${svc}Async\("
  cs_expect "$f" "AsyncUnaryCall<global::Prove\.Gateway\.V1\.${svc}StatusResponse> ${svc}StatusAsync\("
  cs_expect "${svc}Service.cs" "public sealed partial class ${svc}Request : pb::IMessage<${svc}Request>"
done
cs_expect Errors.cs 'public sealed partial class ProveError : pb::IMessage<ProveError>'
cs_expect Errors.cs 'public enum ErrorReason'
cs_expect Types.cs 'public enum PossessionType'
record csharp-stubs "$cs_failed" "$cs_passed" "$cs_failed" 0
took

# --- the gateway on the embedded simulator ----------------------------------------------------
# --- certificates ------------------------------------------------------------------------------
step "certificates: a CA, the gateway's server certificate and a client certificate (openssl)"
command -v openssl >/dev/null || { echo "openssl is needed (apt-get install openssl)" >&2; exit 1; }
PKI=$(mktemp -d -t prove-gateway-pki.XXXXXX)
LOG=$(mktemp -t prove-gateway-clients.XXXXXX.log)
trap 'rm -rf "$PKI" "$LOG"' EXIT
(
  cd "$PKI"
  # P-256 keys in PKCS#8 PEM (`BEGIN PRIVATE KEY`), which Go, Java (netty) and Python all read.
  key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
  # sign NAME SUBJECT EXTENSIONS: a certificate for NAME.key, signed by the CA, valid 2 days.
  sign() {
    openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
    printf '%b' "$3" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile "$1.ext" -out "$1.crt"
  }
  key ca.key
  openssl req -x509 -new -key ca.key -subj "/CN=prove-gateway clients-test CA" -days 2 -out ca.crt \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
  # The clients dial 127.0.0.1, so the IP SAN is the one they check.
  key server.key
  sign server "/CN=prove-gateway" \
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature'
  # The caller's identity is the SPIFFE URI SAN (issue 15: SPIFFE, else DNS SAN, else CN).
  key client.key
  sign client "/CN=clients-test" \
    'subjectAltName=URI:spiffe://prove-gateway.test/ns/examples/sa/clients-test\nextendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature'
) >"$LOG" 2>&1 || { cat "$LOG" >&2; echo "openssl could not make the certificates" >&2; exit 1; }
export PROVE_GATEWAY_CA_FILE=$PKI/ca.crt
export PROVE_GATEWAY_CLIENT_CERT_FILE=$PKI/client.crt
export PROVE_GATEWAY_CLIENT_KEY_FILE=$PKI/client.key
openssl x509 -in "$PKI/client.crt" -noout -subject -ext subjectAltName | sed 's/^/    client: /'
took

# --- the gateway on the embedded simulator ----------------------------------------------------
step "gateway: cargo build, start on loopback with the embedded simulator, TLS and mTLS"
cargo build --quiet
PY=$ROOT/examples/python/.venv/bin/python
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
GRPC_PORT=$(free_port)
SIM_PORT=$(free_port)
HEALTH_PORT=$(free_port)
while [ "$SIM_PORT" = "$GRPC_PORT" ]; do SIM_PORT=$(free_port); done
while [ "$HEALTH_PORT" = "$GRPC_PORT" ] || [ "$HEALTH_PORT" = "$SIM_PORT" ]; do HEALTH_PORT=$(free_port); done
export GATEWAY_ADDR=127.0.0.1:$GRPC_PORT
export SIMULATOR_URL=http://127.0.0.1:$SIM_PORT
# The client-side variables are for the clients only: the gateway gets its own.
env -u PROVE_GATEWAY_CA_FILE -u PROVE_GATEWAY_CLIENT_CERT_FILE -u PROVE_GATEWAY_CLIENT_KEY_FILE \
  PROVE_GATEWAY_LISTEN=$GATEWAY_ADDR \
  PROVE_GATEWAY_HEALTH_LISTEN=127.0.0.1:$HEALTH_PORT \
  PROVE_GATEWAY_METRICS_LISTEN=127.0.0.1:0 \
  PROVE_GATEWAY_SIMULATOR_LISTEN=127.0.0.1:$SIM_PORT \
  PROVE_GATEWAY_TLS_CERT_FILE="$PKI/server.crt" \
  PROVE_GATEWAY_TLS_KEY_FILE="$PKI/server.key" \
  PROVE_GATEWAY_CLIENT_CA_FILE="$PKI/ca.crt" \
  target/debug/prove-gateway >"$LOG" 2>&1 &
GATEWAY_PID=$!
stop_gateway() {
  if kill -0 "$GATEWAY_PID" 2>/dev/null; then
    kill "$GATEWAY_PID" 2>/dev/null || true
    wait "$GATEWAY_PID" 2>/dev/null || true
  fi
}
trap 'stop_gateway; rm -rf "$PKI" "$LOG"' EXIT

# grpc.health.v1.Health/Check with an empty request on the plaintext health port (what the
# kubelet probes); the answer 08 01 is status SERVING.
serving() {
  "$PY" - "127.0.0.1:$HEALTH_PORT" <<'EOF' 2>/dev/null
import sys, grpc
with grpc.insecure_channel(sys.argv[1]) as ch:
    check = ch.unary_unary("/grpc.health.v1.Health/Check")
    sys.exit(0 if check(b"", timeout=1) == b"\x08\x01" else 1)
EOF
}
# The same check on the gRPC port, over mTLS: proves the gateway serves TLS with the server
# certificate before the suites start, so a failure below is the client's.
serving_mtls() {
  "$PY" - "$GATEWAY_ADDR" <<'EOF' 2>/dev/null
import os, sys, grpc
read = lambda name: open(os.environ[name], "rb").read()
creds = grpc.ssl_channel_credentials(read("PROVE_GATEWAY_CA_FILE"), read("PROVE_GATEWAY_CLIENT_KEY_FILE"),
                                     read("PROVE_GATEWAY_CLIENT_CERT_FILE"))
with grpc.secure_channel(sys.argv[1], creds) as ch:
    check = ch.unary_unary("/grpc.health.v1.Health/Check")
    sys.exit(0 if check(b"", timeout=2) == b"\x08\x01" else 1)
EOF
}
for _ in $(seq 1 60); do
  if ! kill -0 "$GATEWAY_PID" 2>/dev/null; then
    echo "gateway exited during start:" >&2; cat "$LOG" >&2; exit 1
  fi
  serving && break
  sleep 0.5
done
serving || { echo "gateway not SERVING on its health port after 30s:" >&2; tail -50 "$LOG" >&2; exit 1; }
serving_mtls || { echo "gateway SERVING on its health port, but not over mTLS on $GATEWAY_ADDR:" >&2; tail -50 "$LOG" >&2; exit 1; }
echo "    SERVING over mTLS at $GATEWAY_ADDR (plaintext health at 127.0.0.1:$HEALTH_PORT), simulator at $SIMULATOR_URL"
took

# --- Go ---------------------------------------------------------------------------------------
step "Go client: go test (examples/go)"
out=$(mktemp)
rc=0
(cd examples/go && go test -count=1 -v ./...) 2>&1 | tee "$out" || rc=$?
# Top-level tests count as passed or failed; a skip anywhere, subtests included (indented), counts.
record go "$rc" "$(grep -c '^--- PASS' "$out" || true)" "$(grep -c '^--- FAIL' "$out" || true)" \
  "$(grep -cE '^[[:space:]]*--- SKIP' "$out" || true)"
rm -f "$out"
took

# --- Java -------------------------------------------------------------------------------------
step "Java client: mvn test (examples/java)"
rc=0
rm -rf examples/java/target/surefire-reports
(cd examples/java && mvn -q -B test) 2>&1 | sed 's/\x1b\[[0-9;]*m//g' || rc=$?
j_run=0 j_bad=0 j_skip=0
for f in examples/java/target/surefire-reports/*.txt; do
  [ -f "$f" ] || continue
  grep -h '^Tests run:' "$f" | sed 's/^/    /'
  read -r run fail err skip < <(sed -nE 's/^Tests run: ([0-9]+), Failures: ([0-9]+), Errors: ([0-9]+), Skipped: ([0-9]+).*/\1 \2 \3 \4/p' "$f")
  j_run=$((j_run + run - skip)) j_bad=$((j_bad + fail + err)) j_skip=$((j_skip + skip))
done
record java "$rc" "$((j_run - j_bad))" "$j_bad" "$j_skip"
took

# --- Python -----------------------------------------------------------------------------------
step "Python client: pytest (examples/python)"
rc=0
xml=$(mktemp)
(cd examples/python && "$PY" -m pytest -q -p no:cacheprovider --junitxml="$xml") || rc=$?
# pytest exits 5 when it collected no tests: that is a failure here too (rc != 0).
# Skipped includes xfail: an expected failure proves nothing either.
read -r p_pass p_fail p_skip < <("$PY" - "$xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print(0, 0, 0); sys.exit()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
n = lambda k: sum(int(s.get(k, 0)) for s in suites)
print(n("tests") - n("failures") - n("errors") - n("skipped"), n("failures") + n("errors"), n("skipped"))
EOF
)
rm -f "$xml"
record python "$rc" "$p_pass" "$p_fail" "$p_skip"
took

# --- summary ----------------------------------------------------------------------------------
stop_gateway
printf '\n==> clients summary (%ss in all)\n' "$((SECONDS - T0))"
total_pass=0 total_fail=0 total_skip=0
for r in "${RESULTS[@]}"; do
  read -r suite p f k <<<"$r"
  printf '    %-13s %3s passed, %s failed, %s skipped\n' "$suite" "$p" "$f" "$k"
  # The closing line counts client tests; the C# stub checks are greps, not tests.
  [ "$suite" = csharp-stubs ] && continue
  total_pass=$((total_pass + p)) total_fail=$((total_fail + f)) total_skip=$((total_skip + k))
done
if [ "${#FAILED_SUITES[@]}" -ne 0 ]; then
  echo "    failed: ${FAILED_SUITES[*]}; gateway log tail:"
  tail -30 "$LOG" | sed 's/^/    | /'
fi
echo "clients: $total_pass passed, $total_fail failed, $total_skip skipped"
[ "${#FAILED_SUITES[@]}" -eq 0 ]
