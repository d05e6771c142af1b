#!/usr/bin/env bash
# Fails when the protobuf contract changed in a way that breaks generated clients (buf's FILE
# rules, from buf.yaml): a field renamed or renumbered, a type or RPC removed, a package or
# option changed. It compares the working tree with an earlier commit, by default HEAD~1: in CI
# that is the main before the submission's last commit.
#
#   bash scripts/buf-breaking.sh            # against HEAD~1
#   bash scripts/buf-breaking.sh origin/main
#   BUF_BREAKING_AGAINST=<ref> bash scripts/buf-breaking.sh
#
# In a shallow clone (CI checkouts often are) the commit to compare with is usually missing, so
# it is fetched: HEAD~N by deepening the clone N commits, any other ref by fetching it from
# origin. If it still cannot be found, the check fails: a skipped check would let a breaking
# change through unnoticed. It skips, with exit 0, only when there is nothing to compare with:
# HEAD~N of a full history that has no N-th ancestor (the first commit), or a commit from before
# the contract existed.
set -euo pipefail
cd "$(dirname "$0")/.."

AGAINST=${1:-${BUF_BREAKING_AGAINST:-HEAD~1}}

fail() { echo "buf breaking: FAIL: $*" >&2; exit 1; }
commit_of() { git rev-parse --verify --quiet "$1^{commit}"; }
shallow() { [ "$(git rev-parse --is-shallow-repository)" = true ]; }

# How far back HEAD~N / HEAD^ reaches; empty for any other ref.
ancestor=""
case "$AGAINST" in
  HEAD^ | HEAD~) ancestor=1 ;;
  HEAD~*[!0-9]*) ;;
  HEAD~?*) ancestor=${AGAINST#HEAD~} ;;
esac

against_commit=$(commit_of "$AGAINST" || true)
if [ -z "$against_commit" ] && shallow; then
  if [ -n "$ancestor" ]; then
    echo "buf breaking: shallow clone without $AGAINST: fetching $ancestor more commit(s) of history"
    git fetch --quiet --deepen="$ancestor" || fail "could not deepen this shallow clone to reach $AGAINST"
    against_commit=$(commit_of "$AGAINST" || true)
  else
    # origin/main, a branch or a commit ID: fetch that one commit from origin.
    echo "buf breaking: shallow clone without $AGAINST: fetching it from origin"
    git fetch --quiet --depth=1 origin "${AGAINST#origin/}" || fail "could not fetch $AGAINST from origin"
    against_commit=$(commit_of FETCH_HEAD || true)
  fi
fi
if [ -z "$against_commit" ]; then
  # Deepening reaches the first commit and then leaves the clone complete, so "not shallow"
  # here means the history really ends before HEAD~N.
  if [ -n "$ancestor" ] && ! shallow && [ "$(git rev-list --count HEAD)" -le "$ancestor" ]; then
    echo "buf breaking: skipped: HEAD has no $AGAINST to compare with (first commit)"
    exit 0
  fi
  if shallow; then
    fail "$AGAINST is not in this shallow clone, even after fetching (fetch more history, e.g. git fetch --unshallow)"
  fi
  fail "no commit $AGAINST to compare with"
fi
short=$(git rev-parse --short "$against_commit")

# The contract appeared with buf.yaml and proto/ together; a commit without both has no
# contract to break (and without buf.yaml its files would be read from another root).
if ! git cat-file -e "$against_commit:buf.yaml" 2>/dev/null || ! git cat-file -e "$against_commit:proto" 2>/dev/null; then
  echo "buf breaking: skipped: $AGAINST ($short) has no buf.yaml + proto/ yet"
  exit 0
fi

# `npm install`, as scripts/test.sh does: `npm ci` refuses the lock file on npm 11, which
# expects entries for buf's binaries of other platforms.
if [ ! -x tools/node_modules/.bin/buf ]; then
  npm install --prefix tools --no-audit --no-fund --loglevel=error
fi

echo "buf breaking: proto/ against $AGAINST ($short)"
tools/node_modules/.bin/buf breaking --against ".git#ref=$against_commit"
echo "buf breaking: no breaking changes"
