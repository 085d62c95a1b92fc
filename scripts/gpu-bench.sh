#!/usr/bin/env bash
# GPU benchmarks run by scripts/gpu-check.sh on the device: the ceilings first (copy bandwidth,
# GEMM rate), then random-weight models at real shapes (sable make-random-model) for decode speed.
#   usage: scripts/gpu-bench.sh OUT_DIR [which...]   which: ceiling decode05 decode8b  (default all)
set -uo pipefail
out=${1:-/tmp}
shift || true
which=${*:-ceiling decode05 decode8b}
bin=/work/main/build-gpu/bin
models=${SABLE_BENCH_MODELS:-/tmp/sable-models}
mkdir -p "$models"
make_model() {  # name config
  [ -f "$models/$1/config.json" ] && return 0
  local t0=$SECONDS
  "$bin/sable" make-random-model --config "/work/main/bench/configs/$2.json" --out "$models/$1" >/dev/null &&
    echo "made $1 in $((SECONDS - t0)) s"
}
for w in $which; do
  case $w in
    ceiling) "$bin/sable_gpu_ceiling" | tee "$out/ceiling.txt" ;;
    decode05)
      make_model qwen05 qwen2.5-0.5b
      for bs in 1 8 32; do "$bin/sable_gpu_decode_bench" "$models/qwen05" $bs 128 256 1; done | tee -a "$out/decode.txt"
      "$bin/sable_gpu_decode_bench" "$models/qwen05" 1 128 256 0 | tee -a "$out/decode.txt" ;;
    decode8b)
      make_model llama8b llama-3.1-8b
      for bs in 1 16 64; do "$bin/sable_gpu_decode_bench" "$models/llama8b" $bs 128 256 1; done | tee -a "$out/decode.txt" ;;
  esac
done
