#!/usr/bin/env bash
# Mutation testing with cargo-mutants: insert a bug, see whether a test fails.
#
#   bash scripts/mutants.sh diff            # mutants in the last commit's change (CI runs this)
#   bash scripts/mutants.sh shard 3/8 [files…]  # one shard of the modules measured in docs/testing.md
#
# `diff` runs under a hard time limit (MUTANTS_TIMEOUT, default 600 s) so it never risks CI's
# time: it fails on a mutant the tests miss, and passes with a note when time runs out first.
# Mutants are made in place (no copy of the 3 GB target directory) and the tree is restored
# after each one; cargo-mutants restores it on SIGINT too, and the script checks that it did.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

if ! command -v cargo-mutants >/dev/null; then
  cargo install cargo-mutants --locked --quiet
fi

restore_check() {
  if ! git diff --quiet -- src; then
    echo "mutants.sh: src/ was left mutated; restoring it" >&2
    git checkout -- src
    exit 1
  fi
}

mode=${1:-diff}
case "$mode" in
  diff)
    if [ "$(git rev-parse --is-shallow-repository)" = true ]; then
      git fetch --quiet --deepen=1 origin || true
    fi
    if ! git rev-parse --verify --quiet HEAD~1 >/dev/null; then
      echo "mutants.sh: no parent commit; nothing to compare"; exit 0
    fi
    diff_file=$(mktemp)
    git diff HEAD~1 -- src > "$diff_file"
    if [ ! -s "$diff_file" ]; then
      echo "mutants.sh: the last commit changes nothing under src/"; exit 0
    fi
    set +e
    timeout -s INT "${MUTANTS_TIMEOUT:-600}" \
      cargo mutants --in-place --in-diff "$diff_file" --no-shuffle --timeout 150 --output target/mutants-diff
    status=$?
    set -e
    restore_check
    case "$status" in
      0) echo "mutants.sh: every mutant in the last commit's change was caught" ;;
      2) echo "mutants.sh: the tests missed a mutant (target/mutants-diff/mutants.out/missed.txt):"
         cat target/mutants-diff/mutants.out/missed.txt; exit 1 ;;
      3) echo "mutants.sh: some mutants timed out (treated as caught: a hang is a failing test)" ;;
      124|130) echo "mutants.sh: time limit reached; the mutants tested so far were all caught"
         if [ -s target/mutants-diff/mutants.out/missed.txt ]; then
           cat target/mutants-diff/mutants.out/missed.txt; exit 1
         fi ;;
      *) echo "mutants.sh: cargo mutants failed with status $status"; exit "$status" ;;
    esac
    ;;
  shard)
    shard=${2:?usage: mutants.sh shard k/n [files…]}
    shift 2
    files=("$@")
    if [ ${#files[@]} -eq 0 ]; then
      files=(src/resilience src/prove src/grpc/status.rs src/grpc/validate.rs)
    fi
    args=()
    for f in "${files[@]}"; do
      if [ -d "$f" ]; then args+=(--file "$f/**"); else args+=(--file "$f"); fi
    done
    out="target/mutants-shard-${shard//\//-of-}"
    set +e
    cargo mutants --in-place --shard "$shard" --sharding round-robin --no-shuffle "${args[@]}" --output "$out"
    status=$?
    set -e
    restore_check
    echo "mutants.sh: shard $shard finished with status $status; results in $out/mutants.out"
    ;;
  *) echo "usage: mutants.sh diff | shard k/n [files…]" >&2; exit 64 ;;
esac
