# syntax=docker/dockerfile:1.7
#
# prove-gateway container image: a release build in the official Rust image, copied into
# distroless/cc (glibc, libgcc, CA certificates; no shell, no package manager), run as the
# unprivileged user 65532 (distroless "nonroot").
#
#   docker build -t prove-gateway:0.1.0 .
#   docker run --rm -p 50051:50051 -p 9090:9090 prove-gateway:0.1.0   # embedded simulator
#
# The Helm chart (helm/prove-gateway) expects exactly this: UID/GID 65532, a read-only root
# filesystem, gRPC on 50051 and metrics on 9090. Pin the base images by digest in your
# registry mirror for reproducible builds.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
# The protos are compiled by protox (pure Rust) in build.rs, so no protoc is needed.
# .dockerignore keeps target/, .git/, the chart and docs out of the context.
COPY . .
# BuildKit cache mounts keep the crate registry and target/ between builds; the binary is
# copied out of the cached target/ because cache mounts are not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin prove-gateway \
    && install -D -m 0755 target/release/prove-gateway /out/prove-gateway

# Debian 12 like the builder, so the glibc the binary was linked against is there.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
LABEL org.opencontainers.image.title="prove-gateway" \
      org.opencontainers.image.description="gRPC gateway in front of Prove's identity APIs" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/prove-gateway /usr/local/bin/prove-gateway
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
# 50051: gRPC (services, health, reflection); 9090: Prometheus /metrics.
EXPOSE 50051 9090
# Configuration is the PROVE_*, PROVE_GATEWAY_* and OTEL_* variables (`prove-gateway --help`);
# the chart sets them. Unconfigured, the gateway answers from its embedded simulator.
ENTRYPOINT ["/usr/local/bin/prove-gateway"]
