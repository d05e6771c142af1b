#!/usr/bin/env bash
# The README's promise, checked literally: `cargo run` starts the gateway on the embedded
# simulator, `grpcurl -plaintext localhost:50051 list` shows both services through reflection,
# the health check answers SERVING, and a Unify call through grpcurl succeeds. grpcurl is
# installed from the Go module proxy on first use.
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
cargo run --quiet >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"' EXIT

fail() { echo "smoke: FAIL: $*" >&2; cat "$log" >&2; exit 1; }
for _ in $(seq 1 100); do
  "$grpcurl" -plaintext localhost:50051 list >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || fail "cargo run exited"
  sleep 0.1
done

passed=0
services="$("$grpcurl" -plaintext localhost:50051 list)"
for s in prove.gateway.v1.UnifyService prove.gateway.v1.VerifyService grpc.health.v1.Health; do
  grep -qx "$s" <<<"$services" || fail "reflection does not list $s: $services"
  passed=$((passed + 1))
done
health="$("$grpcurl" -plaintext localhost:50051 grpc.health.v1.Health/Check)"
grep -q '"SERVING"' <<<"$health" || fail "health is not SERVING: $health"
passed=$((passed + 1))
answer="$("$grpcurl" -plaintext \
  -d '{"possession_type":"POSSESSION_TYPE_MOBILE","phone_number":"2001004014"}' \
  localhost:50051 prove.gateway.v1.UnifyService/Unify)"
grep -q 'UNIFY_OUTCOME_PENDING' <<<"$answer" || fail "Unify did not answer PENDING: $answer"
passed=$((passed + 1))
echo "smoke: $passed passed, 0 failed"
