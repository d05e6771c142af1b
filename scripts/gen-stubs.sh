#!/usr/bin/env bash
# Generates the Go, Java, C# and Python client stubs of prove.gateway.v1 into gen/ with
# `buf generate` (buf.gen.yaml), after installing the plugins it needs. Every install is
# idempotent and kept under examples/.tools (gitignored), so a second run only regenerates.
#
#   bash scripts/gen-stubs.sh
#
# Needs: go, java + mvn, python3, node/npm, a C++ compiler, and Debian's libprotoc-dev (installed
# with apt-get when missing and running as root). Reaches only the Go module proxy, Maven
# Central, PyPI and npm. Output: gen/go (with a go.mod, so `replace` can point at it),
# gen/java, gen/csharp, gen/python.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# Pinned plugin versions. Keep PROTOC_GEN_GRPC_JAVA and PROTOC in step with grpc.version and
# protobuf.version in examples/java/pom.xml.
PROTOC_GEN_GO=v1.36.11
PROTOC_GEN_GO_GRPC=v1.6.1
PROTOC_GEN_GRPC_JAVA=1.76.0
PROTOC=3.25.8
# grpc_csharp_plugin is built from gRPC's own C# generator (the one Grpc.Tools ships), taken from
# the grpcio-tools source release on PyPI. 1.51.3 is the gRPC release built against Debian 12's
# libprotoc (3.21), so it compiles against the system library.
GRPC_CSHARP_SRC=1.51.3

TOOLS=$ROOT/examples/.tools
BIN=$TOOLS/bin
VENV=$ROOT/examples/python/.venv
mkdir -p "$BIN" "$TOOLS/dl"
export PATH="$BIN:$PATH"

log() { printf '   gen-stubs: %s\n' "$*"; }

# --- buf (npm) ------------------------------------------------------------------------------
if [ ! -x tools/node_modules/.bin/buf ]; then
  log "installing buf (npm ci --prefix tools)"
  npm ci --prefix tools --no-audit --no-fund --loglevel=error
fi
BUF=$ROOT/tools/node_modules/.bin/buf

# --- Python venv: grpcio-tools (protoc + grpc_python), also the Python client's runtime -------
REQ=examples/python/requirements.txt
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$REQ" "$VENV/.requirements.installed"; then
  log "creating $VENV from $REQ"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQ"
  cp "$REQ" "$VENV/.requirements.installed"
fi
# buf.gen.yaml runs python3 -m grpc_tools.protoc and examples/tools/protoc-gen-grpc_python with
# the python3 first on PATH: this venv's, which has grpcio-tools.
export PATH="$VENV/bin:$PATH"

# --- Go plugins (Go module proxy) -----------------------------------------------------------
if [ "$("$BIN/protoc-gen-go" --version 2>/dev/null)" != "protoc-gen-go $PROTOC_GEN_GO" ]; then
  log "go install protoc-gen-go@$PROTOC_GEN_GO"
  GOBIN=$BIN go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO"
fi
if [ "$("$BIN/protoc-gen-go-grpc" --version 2>/dev/null)" != "protoc-gen-go-grpc ${PROTOC_GEN_GO_GRPC#v}" ]; then
  log "go install protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC"
  GOBIN=$BIN go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC"
fi

# --- protoc and protoc-gen-grpc-java (Maven Central executable artifacts) -------------------
# buf's protoc_builtin java and csharp run the `protoc` on PATH: the one protobuf publishes for
# Maven builds, the same version examples/java compiles with.
case "$(uname -m)" in
  x86_64 | amd64) CLASSIFIER=linux-x86_64 ;;
  aarch64 | arm64) CLASSIFIER=linux-aarch_64 ;;
  *) echo "gen-stubs: no protoc build on Maven Central for $(uname -m)" >&2; exit 1 ;;
esac
maven_exe() { # groupId artifactId version -> $BIN/artifactId
  local stamp="$TOOLS/$2.version"
  if [ -x "$BIN/$2" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$3" ]; then return; fi
  log "fetching $1:$2:$3:exe:$CLASSIFIER (Maven Central)"
  mvn -q -B -Dstyle.color=never org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
    -Dartifact="$1:$2:$3:exe:$CLASSIFIER" -DoutputDirectory="$TOOLS/dl" \
    -Dmdep.stripVersion=true -Dmdep.stripClassifier=true 2>&1 | sed 's/\x1b\[[0-9;]*m//g'
  install -m 0755 "$TOOLS/dl/$2.exe" "$BIN/$2"
  echo "$3" >"$stamp"
}
maven_exe com.google.protobuf protoc "$PROTOC"
maven_exe io.grpc protoc-gen-grpc-java "$PROTOC_GEN_GRPC_JAVA"

# --- grpc_csharp_plugin (built from source: no NuGet here) ----------------------------------
if [ ! -x "$BIN/grpc_csharp_plugin" ]; then
  if [ ! -f /usr/include/google/protobuf/compiler/code_generator.h ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      log "apt-get install libprotoc-dev (headers for the C# plugin)"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libprotoc-dev >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libprotoc-dev >/dev/null; }
    else
      echo "gen-stubs: install libprotoc-dev (Debian/Ubuntu) to build grpc_csharp_plugin" >&2
      exit 1
    fi
  fi
  SDIST=$TOOLS/dl/grpcio-tools-$GRPC_CSHARP_SRC.tar.gz
  if [ ! -f "$SDIST" ]; then
    log "fetching gRPC's C# generator source (grpcio-tools $GRPC_CSHARP_SRC sdist, PyPI)"
    # The sdist's metadata step imports pkg_resources, gone from setuptools 81.
    echo 'setuptools<81' >"$TOOLS/dl/constraints.txt"
    PIP_CONSTRAINT=$TOOLS/dl/constraints.txt "$VENV/bin/pip" download --quiet \
      --disable-pip-version-check --no-deps --no-binary :all: \
      "grpcio-tools==$GRPC_CSHARP_SRC" -d "$TOOLS/dl"
  fi
  log "building grpc_csharp_plugin"
  rm -rf "$TOOLS/csharp-src" && mkdir -p "$TOOLS/csharp-src"
  tar -xzf "$SDIST" -C "$TOOLS/csharp-src" --strip-components=2 \
    "grpcio-tools-$GRPC_CSHARP_SRC/grpc_root/src/compiler" \
    "grpcio-tools-$GRPC_CSHARP_SRC/grpc_root/include"
  (cd "$TOOLS/csharp-src" && ${CXX:-c++} -O1 -std=c++17 -I. -Iinclude \
    src/compiler/csharp_plugin.cc src/compiler/csharp_generator.cc \
    -lprotoc -lprotobuf -pthread -o "$BIN/grpc_csharp_plugin")
fi

# --- generate --------------------------------------------------------------------------------
"$BUF" generate
# gen/go is its own module, named after go_package, so a client can `replace` it (examples/go).
cat >gen/go/go.mod <<'EOF'
module github.com/prove-gateway/prove-gateway/gen/go

go 1.23
EOF
for d in go java csharp python; do
  log "gen/$d: $(find "gen/$d" -type f | wc -l) files"
done
