#!/usr/bin/env bash
# Runs every fuzz target for N seconds (default 20) from its seed corpus, and fails on
# the first crash (cargo fuzz saves its input under fuzz/artifacts/<target>/ and prints
# how to reproduce it). Needs the nightly toolchain and cargo-fuzz.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-20}

cargo +nightly fuzz build -O
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in $(cargo +nightly fuzz list); do
  echo "fuzz: $target for ${seconds}s"
  # New inputs go to a scratch directory (libFuzzer writes to the first one), so that a
  # run leaves the committed seeds in corpus/ as they are.
  mkdir -p "$scratch/$target"
  log="$scratch/$target.log"
  if ! cargo +nightly fuzz run -O "$target" "$scratch/$target" "corpus/$target" -- \
    -max_total_time="$seconds" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz: $target crashed; its input is under fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E '^Done [0-9]+ runs' "$log" || true
done
echo "fuzz: every target ran ${seconds}s without a crash"
