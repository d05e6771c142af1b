#!/usr/bin/env bash
# ghz beside the bench's own load generator (BENCHMARKS.md, "Reproduce"): c=1 Unify latency
# through the release gateway, first plaintext and open, then with TLS, mTLS and a callers file
# listing ghz's client certificate, and p50/p99 of each and their difference.
#
#   bash scripts/ghz.sh                # GHZ_N=2000 calls per mode, after GHZ_WARMUP=200
#   GHZ_N=200 GHZ_WARMUP=20 bash scripts/ghz.sh   # a quick check that it works
#
# ghz is installed with `go install github.com/bojand/ghz/cmd/ghz@latest` (from the Go module
# proxy) unless it is on PATH or in $(go env GOPATH)/bin. Both gateways call one
# `prove-gateway simulator` process with its limit off, and run with their own limiter far above
# the load, as in `cargo bench`, so neither limiter acts. ghz keeps one connection per run
# (--connections=1, the default) and makes the handshake before its first call, so the mTLS
# figures are per call after the handshake. The certificates are made here with openssl, as
# scripts/clients-test.sh makes them. Like the bench, run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

N=${GHZ_N:-2000}
WARMUP=${GHZ_WARMUP:-200}
IDENTITY=spiffe://prove-gateway.bench/ns/bench/sa/ghz

# --- ghz ----------------------------------------------------------------------------------------
GHZ=$(command -v ghz || true)
if [ -z "$GHZ" ]; then
  GHZ=$(go env GOPATH)/bin/ghz
  if [ ! -x "$GHZ" ]; then
    echo "==> installing ghz (go install github.com/bojand/ghz/cmd/ghz@latest)"
    go install github.com/bojand/ghz/cmd/ghz@latest || {
      echo "ghz.sh: ghz could not be built from the Go module proxy" >&2
      exit 1
    }
  fi
fi
echo "ghz: $GHZ ($("$GHZ" --version 2>&1))"

# --- certificates and the callers file ----------------------------------------------------------
command -v openssl >/dev/null || { echo "openssl is needed (apt-get install openssl)" >&2; exit 1; }
WORK=$(mktemp -d -t prove-gateway-ghz.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
(
  cd "$WORK"
  key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
  sign() { # NAME SUBJECT EXTENSIONS: NAME.crt for NAME.key, signed by the CA, valid 2 days
    openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
    printf '%b' "$3" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile "$1.ext" -out "$1.crt"
  }
  key ca.key
  openssl req -x509 -new -key ca.key -subj "/CN=prove-gateway ghz CA" -days 2 -out ca.crt \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
  key server.key
  sign server "/CN=prove-gateway" \
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature'
  key client.key
  sign client "/CN=ghz" \
    "subjectAltName=URI:$IDENTITY\nextendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature"
) >"$WORK/openssl.log" 2>&1 || { cat "$WORK/openssl.log" >&2; echo "openssl could not make the certificates" >&2; exit 1; }
cat >"$WORK/callers.yaml" <<EOF
callers:
  - name: ghz
    identities: ["$IDENTITY"]
    allow: ["prove.gateway.v1.UnifyService/*"]
EOF

# --- the simulator and the two gateways -----------------------------------------------------------
echo "==> cargo build --release"
cargo build --release --quiet
BIN=$ROOT/target/release/prove-gateway
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Waits (at most 30 s) until something accepts on 127.0.0.1:$1, or process $2 has exited.
wait_port() {
  for _ in $(seq 1 300); do
    kill -0 "$2" 2>/dev/null || { echo "ghz.sh: a process exited during start; its log:" >&2; cat "$WORK"/*.log >&2; exit 1; }
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "ghz.sh: nothing listens on 127.0.0.1:$1 after 30 s" >&2
  exit 1
}

SIM_PORT=$(free_port)
env -i PATH="$PATH" PROVE_SIMULATOR_LISTEN=127.0.0.1:$SIM_PORT PROVE_SIMULATOR_RATE_LIMIT_RPS=0 \
  "$BIN" simulator >"$WORK/simulator.log" 2>&1 &
PIDS+=($!)
wait_port "$SIM_PORT" "$!"

# start_gateway LOG VAR=VALUE...: a gateway on a fresh port in front of the simulator; sets PORT.
start_gateway() {
  local log=$1
  shift
  PORT=$(free_port)
  env -i PATH="$PATH" \
    PROVE_GATEWAY_LISTEN=127.0.0.1:$PORT \
    PROVE_GATEWAY_METRICS_LISTEN=127.0.0.1:0 \
    PROVE_BASE_URL=http://127.0.0.1:$SIM_PORT \
    PROVE_CLIENT_ID=sim-unify-client PROVE_CLIENT_SECRET=sim-unify-secret \
    PROVE_VERIFY_CLIENT_ID=sim-verify-client PROVE_VERIFY_CLIENT_SECRET=sim-verify-secret \
    PROVE_RATE_LIMIT_RPS=1000000 PROVE_RATE_LIMIT_QUEUE=100000 \
    "$@" "$BIN" >"$WORK/$log" 2>&1 &
  PIDS+=($!)
  wait_port "$PORT" "$!"
}

start_gateway plaintext.log
PLAIN_PORT=$PORT
start_gateway mtls.log \
  PROVE_GATEWAY_TLS_CERT_FILE="$WORK/server.crt" \
  PROVE_GATEWAY_TLS_KEY_FILE="$WORK/server.key" \
  PROVE_GATEWAY_CLIENT_CA_FILE="$WORK/ca.crt" \
  PROVE_GATEWAY_CALLERS_FILE="$WORK/callers.yaml" \
  PROVE_GATEWAY_HEALTH_LISTEN=127.0.0.1:$(free_port)
MTLS_PORT=$PORT

# --- ghz ----------------------------------------------------------------------------------------
# ghz MODE N OUT: N Unify calls at c=1 through MODE's gateway; the JSON report to OUT.
ghz_run() {
  local target=(--insecure 127.0.0.1:"$PLAIN_PORT")
  if [ "$1" = mtls ]; then
    target=(--cacert "$WORK/ca.crt" --cert "$WORK/client.crt" --key "$WORK/client.key"
      --cname localhost 127.0.0.1:"$MTLS_PORT")
  fi
  "$GHZ" --proto proto/prove/gateway/v1/unify_service.proto --import-paths proto \
    --call prove.gateway.v1.UnifyService.Unify \
    -d '{"possession_type":"POSSESSION_TYPE_MOBILE","phone_number":"2001004014"}' \
    -c 1 -n "$2" --connections 1 --format json -o "$3" "${target[@]}"
}

# Interleaved as the bench does: warm-up of each, then plaintext and mTLS in turn, twice.
echo "==> warm-up ($WARMUP calls each), then 2 interleaved rounds of $((N / 2)) calls per mode"
ghz_run plain "$WARMUP" "$WORK/warm-plain.json"
ghz_run mtls "$WARMUP" "$WORK/warm-mtls.json"
for round in 1 2; do
  ghz_run plain $((N / 2)) "$WORK/plain-$round.json"
  ghz_run mtls $((N / 2)) "$WORK/mtls-$round.json"
done

# p50/p99 over both rounds' calls (ghz's own percentiles are per run, so the details are pooled).
python3 - "$WORK" <<'EOF'
import json, sys
work = sys.argv[1]

def pooled(mode):
    latencies, errors = [], 0
    for r in (1, 2):
        with open(f"{work}/{mode}-{r}.json") as f:
            report = json.load(f)
        for d in report.get("details") or []:
            if d.get("status") == "OK" and not d.get("error"):
                latencies.append(d["latency"])  # nanoseconds
            else:
                errors += 1
    latencies.sort()
    return latencies, errors

def pct(sorted_ns, q):
    if not sorted_ns:
        return 0.0
    rank = max(1, min(len(sorted_ns), -(-len(sorted_ns) * q // 1)))
    return sorted_ns[int(rank) - 1] / 1e6

plain, plain_errors = pooled("plain")
mtls, mtls_errors = pooled("mtls")
print()
print("| measurement | figure | target | verdict |")
print("|---|---|---|---|")
for q, name, target in ((0.5, "p50", 0.1), (0.99, "p99", None)):
    p, m = pct(plain, q), pct(mtls, q)
    added = m - p
    verdict = "–" if target is None else ("met" if added <= target else "**missed**")
    print(f"| ghz Unify latency c=1 {name}: plaintext open → mTLS + callers file (added) "
          f"| {p:.3f} ms → {m:.3f} ms ({added:+.3f} ms); {len(plain)}+{len(mtls)} calls, "
          f"{plain_errors}+{mtls_errors} errors "
          f"| {'report' if target is None else f'added ≤ {target} ms'} | {verdict} |")
if plain_errors or mtls_errors or not plain or not mtls:
    sys.exit("ghz.sh: some calls failed (see the errors column)")
EOF
