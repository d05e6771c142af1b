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
# Skips, with a message and exit 0, when there is nothing to compare with: a repository of one
# commit, a shallow clone without that commit, or a commit from before the contract existed.
set -euo pipefail
cd "$(dirname "$0")/.."

AGAINST=${1:-${BUF_BREAKING_AGAINST:-HEAD~1}}

if [ ! -x tools/node_modules/.bin/buf ]; then
  npm ci --prefix tools --no-audit --no-fund --loglevel=error
fi

if ! git rev-parse --verify --quiet "$AGAINST^{commit}" >/dev/null; then
  if [ "$(git rev-parse --is-shallow-repository 2>/dev/null)" = true ]; then
    echo "buf breaking: skipped: $AGAINST is not in this shallow clone (fetch more history to check)"
  else
    echo "buf breaking: skipped: no commit $AGAINST to compare with (first commit?)"
  fi
  exit 0
fi
# The contract appeared with buf.yaml and proto/ together; a commit without both has no
# contract to break (and without buf.yaml its files would be read from another root).
if ! git cat-file -e "$AGAINST:buf.yaml" 2>/dev/null || ! git cat-file -e "$AGAINST:proto" 2>/dev/null; then
  echo "buf breaking: skipped: $AGAINST ($(git rev-parse --short "$AGAINST")) has no buf.yaml + proto/ yet"
  exit 0
fi

echo "buf breaking: proto/ against $AGAINST ($(git rev-parse --short "$AGAINST"))"
tools/node_modules/.bin/buf breaking --against ".git#ref=$(git rev-parse "$AGAINST")"
echo "buf breaking: no breaking changes"
