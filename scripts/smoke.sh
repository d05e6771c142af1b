#!/usr/bin/env bash
# The README's promise, checked literally: `cargo run` starts the gateway on the embedded
# simulator, `grpcurl -plaintext ADDR list` shows both services through reflection, the health
# check answers SERVING, and a Unify call through grpcurl succeeds. grpcurl is installed from the
# Go module proxy on first use.
#
# The gateway listens on a free loopback port, not on the default 50051: whatever already holds
# 50051 (another gateway, say) would otherwise answer in its place, and the check would pass with
# its own process dead. The port is probed free and then bound by the gateway, so another process
# can take it in between: the gateway then exits naming PROVE_GATEWAY_LISTEN and another port is
# tried. The checks start only after the gateway logged that it is serving (it binds first), and
# end by checking it still runs, so every answer came from the process started here. Metrics and
# the embedded simulator take any free port (0).
set -euo pipefail
cd "$(dirname "$0")/.."

GRPCURL_VERSION="${GRPCURL_VERSION:-v1.9.3}"
gobin="$(go env GOPATH)/bin"
grpcurl="$gobin/grpcurl"
if [ ! -x "$grpcurl" ]; then
  echo "smoke: installing grpcurl $GRPCURL_VERSION from the Go module proxy"
  go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION"
fi

cargo build --quiet
log="$(mktemp)"
pid=""
stop() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; }
trap 'stop; rm -f "$log"' EXIT
fail() { echo "smoke: FAIL: $*" >&2; cat "$log" >&2; exit 1; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

addr=""
for _ in $(seq 1 10); do
  port="$(free_port)"
  # PROVE_BASE_URL unset: the embedded simulator, as the README's `cargo run` promises. The info
  # log carries the "serving" line waited for below.
  env -u PROVE_BASE_URL PROVE_GATEWAY_LOG=info \
    PROVE_GATEWAY_LISTEN="127.0.0.1:$port" \
    PROVE_GATEWAY_METRICS_LISTEN=127.0.0.1:0 \
    PROVE_GATEWAY_SIMULATOR_LISTEN=127.0.0.1:0 \
    cargo run --quiet >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do
    grep -q 'prove-gateway serving' "$log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if grep -q 'prove-gateway serving' "$log"; then
    addr="127.0.0.1:$port"
    break
  fi
  if kill -0 "$pid" 2>/dev/null; then
    fail "cargo run did not log 'prove-gateway serving' within 30 s"
  fi
  wait "$pid" 2>/dev/null || true
  pid=""
  grep -q 'PROVE_GATEWAY_LISTEN.*in use' "$log" || fail "cargo run exited"
  echo "smoke: port $port was taken before the gateway bound it; trying another"
done
[ -n "$addr" ] || fail "no free port after 10 tries"
echo "smoke: gateway (pid $pid) serving at $addr"

# The port is bound, but the health service may answer a moment later than the log line.
for _ in $(seq 1 100); do
  "$grpcurl" -plaintext "$addr" list >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || fail "cargo run exited"
  sleep 0.1
done

passed=0
services="$("$grpcurl" -plaintext "$addr" list)"
for s in prove.gateway.v1.UnifyService prove.gateway.v1.VerifyService grpc.health.v1.Health; do
  grep -qx "$s" <<<"$services" || fail "reflection does not list $s: $services"
  passed=$((passed + 1))
done
health="$("$grpcurl" -plaintext "$addr" grpc.health.v1.Health/Check)"
grep -q '"SERVING"' <<<"$health" || fail "health is not SERVING: $health"
passed=$((passed + 1))
answer="$("$grpcurl" -plaintext \
  -d '{"possession_type":"POSSESSION_TYPE_MOBILE","phone_number":"2001004014"}' \
  "$addr" prove.gateway.v1.UnifyService/Unify)"
grep -q 'UNIFY_OUTCOME_PENDING' <<<"$answer" || fail "Unify did not answer PENDING: $answer"
passed=$((passed + 1))
# Still running: it held the port throughout, so the answers above were its own.
kill -0 "$pid" 2>/dev/null || fail "the gateway started here exited during the checks"
echo "smoke: $passed passed, 0 failed"
