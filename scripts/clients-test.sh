#!/usr/bin/env bash
# Proves the generated client stubs work, in the languages callers use: generates them
# (scripts/gen-stubs.sh), starts the gateway on the embedded simulator, and runs the Go
# (go test), Java (Maven + JUnit) and Python (pytest) example clients in examples/ against it.
# Each runs a Unify flow, a Verify, and error cases whose google.rpc details (ErrorInfo,
# RetryInfo, BadRequest) and prove.gateway.v1.ProveError it unpacks. There is no .NET SDK here,
# so the C# stubs are checked for the generated service classes only.
#
#   bash scripts/clients-test.sh
#
# Needs cargo, go, java 17 + mvn, python3, node/npm and a C++ compiler (see gen-stubs.sh); first
# run downloads plugins and dependencies. Exits non-zero if any client or check fails, or if any
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
step "gateway: cargo build, start on loopback with the embedded simulator"
cargo build --quiet
PY=$ROOT/examples/python/.venv/bin/python
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
GRPC_PORT=$(free_port)
SIM_PORT=$(free_port)
while [ "$SIM_PORT" = "$GRPC_PORT" ]; do SIM_PORT=$(free_port); done
export GATEWAY_ADDR=127.0.0.1:$GRPC_PORT
export SIMULATOR_URL=http://127.0.0.1:$SIM_PORT
LOG=$(mktemp -t prove-gateway-clients.XXXXXX.log)
PROVE_GATEWAY_LISTEN=$GATEWAY_ADDR \
  PROVE_GATEWAY_METRICS_LISTEN=127.0.0.1:0 \
  PROVE_GATEWAY_SIMULATOR_LISTEN=127.0.0.1:$SIM_PORT \
  target/debug/prove-gateway >"$LOG" 2>&1 &
GATEWAY_PID=$!
stop_gateway() {
  if kill -0 "$GATEWAY_PID" 2>/dev/null; then
    kill "$GATEWAY_PID" 2>/dev/null || true
    wait "$GATEWAY_PID" 2>/dev/null || true
  fi
}
trap 'stop_gateway; rm -f "$LOG"' EXIT

# grpc.health.v1.Health/Check with an empty request; the answer 08 01 is status SERVING.
serving() {
  "$PY" - "$GATEWAY_ADDR" <<'EOF' 2>/dev/null
import sys, grpc
with grpc.insecure_channel(sys.argv[1]) as ch:
    check = ch.unary_unary("/grpc.health.v1.Health/Check")
    sys.exit(0 if check(b"", timeout=1) == b"\x08\x01" else 1)
EOF
}
for _ in $(seq 1 60); do
  if ! kill -0 "$GATEWAY_PID" 2>/dev/null; then
    echo "gateway exited during start:" >&2; cat "$LOG" >&2; exit 1
  fi
  serving && break
  sleep 0.5
done
serving || { echo "gateway not SERVING after 30s:" >&2; tail -50 "$LOG" >&2; exit 1; }
echo "    SERVING at $GATEWAY_ADDR, simulator at $SIMULATOR_URL"
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
