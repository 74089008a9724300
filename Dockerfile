# syntax=docker/dockerfile:1
# accessd as a container, e.g. a Kubernetes sidecar (deploy/kubernetes/). Base images are
# arguments so that air-gapped builds can use images of their own: deploy/container-test.sh
# makes both with debootstrap.
ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS build
WORKDIR /src

# The dependencies, in a layer of their own that a change to accessd's sources leaves
# cached: the manifests with stand-in sources for every target they name (the workspace's
# `bench` member included, whose manifest cargo reads even though only accessd is built).
COPY Cargo.toml Cargo.lock ./
COPY bench/Cargo.toml bench/
RUN mkdir -p src bench/src benches \
 && echo 'fn main() {}' > build.rs \
 && echo 'fn main() {}' > src/main.rs \
 && echo '//! Stand-in.' > src/lib.rs \
 && echo 'fn main() {}' > bench/src/main.rs \
 && for bench in engine store scale; do echo 'fn main() {}' > "benches/$bench.rs"; done
# The only step that reaches the network. Two optional build secrets, for a network whose
# TLS goes through a CA of its own and for a registry mirror (README, "The image"):
#   --secret id=ca_bundle,src=/etc/ssl/certs/ca-certificates.crt
#       the whole PEM bundle to trust, in place of the image's (your CA and the public ones);
#   --secret id=cargo_config,src=cargo-config.toml
#       a cargo configuration, e.g. `[source.crates-io] replace-with = "mirror"`.
# Secrets are mounted for this step only: neither lands in a layer.
RUN --mount=type=secret,id=ca_bundle,required=false \
    --mount=type=secret,id=cargo_config,required=false,target=/src/.cargo/config.toml \
    if [ -s /run/secrets/ca_bundle ]; then export CARGO_HTTP_CAINFO=/run/secrets/ca_bundle; fi \
 && cargo build --release --locked -p accessd --bin accessd \
 && cargo clean --release --locked -p accessd
# `cargo clean -p accessd` above drops the stand-in's artifacts: cargo tells fresh from stale
# by modification times, and the real sources copied below may be older than the stand-ins.

COPY build.rs clippy.toml ./
COPY proto proto
COPY src src
COPY benches benches
COPY bench/src bench/src
RUN cargo build --release --locked --offline -p accessd --bin accessd \
 && mkdir /empty-data-dir

FROM ${RUNTIME_IMAGE}
COPY --from=build /src/target/release/accessd /usr/local/bin/accessd
# The data directory exists in the image, owned by the user accessd runs as, so that a new
# named volume mounted on it (Docker, podman) starts with that owner: Docker copies the
# image directory's owner into a new volume, and creates it owned by root when the image
# has no such directory (then `IO error: Permission denied` at start).
COPY --from=build --chown=65532:65532 /empty-data-dir /var/lib/accessd
# Listen on all interfaces so that the kubelet's gRPC probes reach the pod IP. With no
# credentials the server refuses to start there: give it a callers file
# (ACCESSD_CALLERS, from a Secret), or client certificates to require
# (ACCESSD_TLS_CLIENT_CA with ACCESSD_TLS_CERT and ACCESSD_TLS_KEY).
ENV ACCESSD_LISTEN=0.0.0.0:50051 \
    ACCESSD_DATA_DIR=/var/lib/accessd \
    ACCESSD_LOG_FORMAT=json
VOLUME ["/var/lib/accessd"]
EXPOSE 50051
USER 65532:65532
# accessd is PID 1 (exec form, no shell) and handles SIGTERM itself: NOT_SERVING, drain
# in-flight calls for at most --drain-timeout (15 s), flush, exit 0. The default signal
# already, stated so that a base image cannot change it.
STOPSIGNAL SIGTERM
# No HEALTHCHECK: Kubernetes ignores it and asks the gRPC health service with its own
# probes (deploy/kubernetes/), and the runtime image has no shell or probe program to run
# one; under Docker or podman, ask `grpc.health.v1.Health/Check` from outside.
ENTRYPOINT ["/usr/local/bin/accessd"]
CMD ["serve"]
