#!/usr/bin/env bash
# GPU benchmarks run by scripts/gpu-check.sh on the device: the ceilings first (copy bandwidth,
# GEMM rate), then the model benchmarks. Prints one line per number.
set -uo pipefail
out=${1:-/tmp}
bin=/work/main/build-gpu/bin
[ -x "$bin/sable_gpu_ceiling" ] && "$bin/sable_gpu_ceiling" | tee "$out/ceiling.txt"
if [ -x "$bin/sable" ] && [ -x "$bin/sable_gpu_decode_bench" ]; then
  "$bin/sable_gpu_decode_bench" "$out" | tee "$out/decode.txt"
fi
