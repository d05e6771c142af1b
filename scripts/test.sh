#!/usr/bin/env bash
# Runs every test of prove-gateway: the Rust unit and black-box tests, the protobuf lint and
# breaking-change check, the Helm chart checks, and the Go, Java and Python example clients
# against a running gateway. Tools it needs (buf from npm; helm, kubeconform and the protoc
# plugins from the Go module proxy, Maven Central and PyPI; redis-server from Debian) are
# installed on first use, so a fresh machine with cargo, go, java/maven, node and python3 works.
#
# Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "protobuf contract: buf lint (STANDARD + COMMENTS)"
if [ ! -x tools/node_modules/.bin/buf ]; then
  npm install --prefix tools --no-audit --no-fund --loglevel=error
fi
tools/node_modules/.bin/buf lint

step "Rust: unit and black-box tests"
# The shared rate limiter is tested against a real redis-server. Plain `cargo test` skips those
# tests where redis-server is missing; here a missing redis-server fails them instead.
export PROVE_GATEWAY_TEST_REQUIRE_REDIS=1
if ! command -v redis-server >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq redis-server
fi
cargo test

step "Helm chart: lint, Kubernetes schemas, env names and ports against the binary"
cargo build --quiet
bash scripts/helm-check.sh target/debug/prove-gateway

step "README's run command: cargo run, then grpcurl list, health and a Unify call"
bash scripts/smoke.sh

step "Contract: buf breaking against the previous commit"
bash scripts/buf-breaking.sh

step "Generated stubs: Go, Java and Python clients against a running gateway (C# generated)"
bash scripts/clients-test.sh
