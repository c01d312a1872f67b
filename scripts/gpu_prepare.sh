#!/usr/bin/env bash
# Builds, on this (GPU-less) machine, what scripts/gpu_check.sh runs on a GPU machine that has
# no Rust toolchain: the release test binary of tests/cuda_gpu.rs and libctc.so, copied to .gpu/
# (ignored by git; name it in the device tool's `carry`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$(cargo test --release --test cuda_gpu --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "cuda_gpu" and m.get("executable"):
        print(m["executable"])')
rm -rf .gpu && mkdir -p .gpu
cp "$bin" .gpu/cuda_gpu
cp target/release/libctc.so .gpu/libctc.so
pwd > .gpu/built_in  # the test binary reads tests/data from here
ls -la .gpu
