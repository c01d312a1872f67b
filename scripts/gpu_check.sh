#!/usr/bin/env bash
# Runs on a machine with an NVIDIA GPU (no Rust toolchain needed): the real-GPU test suite and
# the GPU benchmark against torch CUDA and cuDNN, from what scripts/gpu_prepare.sh left in .gpu/.
# Logs go to $OUT when it is set (the device tool), else to ./gpu-logs.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-logs}; mkdir -p "$out"
# The test binary reads its golden files from the path it was built in.
built_in=$(cat .gpu/built_in)
if [ -n "$built_in" ] && [ ! -e "$built_in/tests/data/golden" ]; then
  mkdir -p "$(dirname "$built_in")" && ln -sfn "$PWD" "$built_in"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/device.txt"
# NVRTC: libctc looks for libnvrtc by name; point it at whatever this machine has.
nv=$(find /usr/local /opt /usr/lib -name 'libnvrtc.so.1[23]*' 2>/dev/null | grep -v builtins | sort | head -1)
echo "NVRTC: ${nv:-none found}" | tee -a "$out/device.txt"
if [ -n "$nv" ]; then
  mkdir -p /tmp/nvrtc && ln -sfn "$nv" /tmp/nvrtc/libnvrtc.so
  export LD_LIBRARY_PATH="/tmp/nvrtc:$(dirname "$nv")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
export CTC_REQUIRE_ALL=1 RUST_BACKTRACE=1 PYTHONUNBUFFERED=1
echo "== tests/cuda_gpu.rs"
timeout 180 .gpu/cuda_gpu --test-threads=1 --nocapture 2>&1 | tee "$out/cuda_gpu.log"
echo "cuda_gpu exit: ${PIPESTATUS[0]}" | tee -a "$out/cuda_gpu.log"
echo "== scripts/bench_gpu.py"
CTC_LIBRARY=.gpu/libctc.so PYTHONPATH=bindings/python timeout 240 python3 scripts/bench_gpu.py \
  --reps "${GPU_BENCH_REPS:-30}" --markdown 2>&1 | tee "$out/bench_gpu.log"
echo "bench_gpu exit: ${PIPESTATUS[0]}" | tee -a "$out/bench_gpu.log"
if command -v compute-sanitizer >/dev/null && [ "${GPU_SANITIZE:-1}" = 1 ]; then
  echo "== compute-sanitizer memcheck tests/cuda_gpu.rs"
  timeout 150 compute-sanitizer --tool memcheck --leak-check no .gpu/cuda_gpu --test-threads=1 \
    2>&1 | tail -40 | tee "$out/memcheck.log"
fi
