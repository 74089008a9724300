# accessd as a container, e.g. a Kubernetes sidecar (see deploy/kubernetes/sidecar.yaml).
# Base images are arguments so that air-gapped builds can point at local mirrors.
ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs clippy.toml ./
COPY proto proto
COPY src src
COPY benches benches
# The workspace names the load generator as a member, so cargo reads its manifest and
# sources; only accessd is built.
COPY bench bench
RUN cargo build --release --locked -p accessd --bin accessd

FROM ${RUNTIME_IMAGE}
COPY --from=build /src/target/release/accessd /usr/local/bin/accessd
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
ENTRYPOINT ["/usr/local/bin/accessd"]
CMD ["serve"]
