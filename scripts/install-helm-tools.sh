#!/usr/bin/env bash
# Installs what scripts/helm-check.sh needs, idempotently (each step is skipped when already done):
#   - helm         built from the Go module proxy (go install helm.sh/helm/v3/cmd/helm@HELM_VERSION)
#   - kubeconform  built from the Go module proxy (go install github.com/yannh/kubeconform/...)
#   - Kubernetes JSON schemas for kubeconform, taken from the `kubernetes-validate` wheel on PyPI.
#
# Why the schemas come from PyPI: kubeconform normally downloads them from GitHub, which is not
# reachable from our machines or CI. The kubernetes-validate wheel (pinned and hash-checked
# below) ships the same openapi2jsonschema output per Kubernetes version, in the "-local" layout
# (one file per kind plus a shared _definitions.json). Two rewrites make it load from disk:
# the top-level "$id" (an https://kubernetes.io URL that the schema compiler would try to fetch)
# is dropped, and "$ref": "/api/_definitions.json#..." becomes the relative "_definitions.json#...".
#
# Binaries go to $(go env GOPATH)/bin (usually ~/go/bin); schemas to $HELM_TOOLS_CACHE.
# Measured on a 2-core machine with empty Go caches (GOCACHE, GOMODCACHE): 2 min 51 s in all
# (helm 163 s while cargo was also building; kubeconform 5 s after helm, ~30 s alone; schemas
# 3 s). With everything present the script takes about a second.
#
# Usage: scripts/install-helm-tools.sh        (prints the paths it installed or found)
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
KUBECONFORM_VERSION="${KUBECONFORM_VERSION:-v0.8.0}"
# kubernetes-validate 1.37.0 carries schemas for Kubernetes 1.25 to 1.37.
K8S_SCHEMA_WHEEL_VERSION="1.37.0"
K8S_SCHEMA_WHEEL_SHA256="85136d018a27b50ec7fc049d902bfa5193f5976807e6c0f408e3ab6fe078cad9"
# The Kubernetes versions helm-check.sh validates against: the chart's minimum (kubeVersion in
# Chart.yaml) and the newest the wheel has.
K8S_VERSIONS="${K8S_VERSIONS:-1.27.0 1.37.0}"
HELM_TOOLS_CACHE="${HELM_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/prove-gateway-helm-tools}"

log() { printf 'install-helm-tools: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v go >/dev/null || die "go is required (the tools are built from the Go module proxy)"
command -v python3 >/dev/null || die "python3 is required (to fetch and prepare the schemas)"
GOBIN_DIR="$(go env GOBIN)"
[ -n "$GOBIN_DIR" ] || GOBIN_DIR="$(go env GOPATH)/bin"
mkdir -p "$GOBIN_DIR" "$HELM_TOOLS_CACHE"

# The version of an installed tool, or nothing. helm reports the version its ldflags set (so a
# plain `go install` build, which says "v3.22", is rebuilt); others the module they came from.
built_version() { # binary module
  [ -x "$1" ] || return 0
  if [ "$(basename "$1")" = helm ]; then
    "$1" version --template '{{.Version}}' 2>/dev/null || true
  else
    go version -m "$1" 2>/dev/null | awk -v m="$2" '$1 == "mod" && $2 == m { print $3 }'
  fi
}

install_go_tool() { # name module package version [ldflags]
  local name="$1" module="$2" pkg="$3" version="$4" ldflags="${5:-}"
  local bin="$GOBIN_DIR/$name"
  if [ "$(built_version "$bin" "$module")" = "$version" ]; then
    log "$name $version already in $bin"
    return
  fi
  log "building $name $version from the Go module proxy..."
  local start=$SECONDS
  GOBIN="$GOBIN_DIR" GOFLAGS="${GOFLAGS:-} -trimpath" CGO_ENABLED=0 \
    go install -ldflags "$ldflags" "$pkg@$version"
  log "$name $version installed in $bin ($((SECONDS - start)) s)"
}

# helm's Makefile sets its version and default Kubernetes version through ldflags; `go install`
# alone would report "v3.22" and assume Kubernetes 1.20. Kubernetes 1.37 is the client-go minor
# helm v3.22.0 is built with.
HELM_LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  HELM_LDFLAGS+=" -X ${pkg}.k8sVersionMajor=1 -X ${pkg}.k8sVersionMinor=37"
done
install_go_tool helm helm.sh/helm/v3 helm.sh/helm/v3/cmd/helm "$HELM_VERSION" "$HELM_LDFLAGS"
install_go_tool kubeconform github.com/yannh/kubeconform \
  github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION" "-s -w"

# Kubernetes JSON schemas.
SCHEMA_DIR="$HELM_TOOLS_CACHE/kubernetes-json-schema-$K8S_SCHEMA_WHEEL_VERSION"
missing=""
for v in $K8S_VERSIONS; do
  [ -f "$SCHEMA_DIR/v$v-local-strict/.complete" ] || missing+=" $v"
done
if [ -z "$missing" ]; then
  log "Kubernetes schemas for $K8S_VERSIONS already in $SCHEMA_DIR"
else
  start=$SECONDS
  wheel_dir="$HELM_TOOLS_CACHE/wheel"
  wheel="$wheel_dir/kubernetes_validate-$K8S_SCHEMA_WHEEL_VERSION-py3-none-any.whl"
  if [ ! -f "$wheel" ] || ! echo "$K8S_SCHEMA_WHEEL_SHA256  $wheel" | sha256sum -c --quiet - 2>/dev/null; then
    log "downloading kubernetes-validate==$K8S_SCHEMA_WHEEL_VERSION from PyPI (schemas only; nothing is installed)"
    mkdir -p "$wheel_dir"
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
      --dest "$wheel_dir" "kubernetes-validate==$K8S_SCHEMA_WHEEL_VERSION"
  fi
  echo "$K8S_SCHEMA_WHEEL_SHA256  $wheel" | sha256sum -c --quiet - \
    || die "kubernetes-validate wheel hash mismatch: $wheel"
  # shellcheck disable=SC2086
  python3 - "$wheel" "$SCHEMA_DIR" $missing <<'PY'
import json, os, sys, zipfile

wheel, out_dir, versions = sys.argv[1], sys.argv[2], sys.argv[3:]
prefix = "kubernetes_validate/kubernetes-json-schema/"
with zipfile.ZipFile(wheel) as z:
    for v in versions:
        for flavour in ("local", "local-strict"):
            sub = f"v{v}-{flavour}/"
            names = [n for n in z.namelist() if n.startswith(prefix + sub) and n.endswith(".json")]
            if not names:
                sys.exit(f"no schemas for Kubernetes {v} in {wheel}")
            target = os.path.join(out_dir, sub)
            os.makedirs(target, exist_ok=True)
            for n in names:
                doc = json.loads(z.read(n))
                if isinstance(doc, dict):
                    doc.pop("$id", None)
                text = json.dumps(doc).replace('"/api/_definitions.json#', '"_definitions.json#')
                with open(os.path.join(target, os.path.basename(n)), "w") as f:
                    f.write(text)
            open(os.path.join(target, ".complete"), "w").close()
PY
  log "Kubernetes schemas for$missing written to $SCHEMA_DIR ($((SECONDS - start)) s)"
fi

echo "HELM=$GOBIN_DIR/helm"
echo "KUBECONFORM=$GOBIN_DIR/kubeconform"
echo "K8S_SCHEMA_DIR=$SCHEMA_DIR"
