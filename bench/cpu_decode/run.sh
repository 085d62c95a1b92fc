#!/usr/bin/env bash
# CPU decode speed: the golden models, the default model of `make serve` (SmolLM2-135M-Instruct,
# Q4_1 GGUF, dequantized to fp32) and a random-weight model of Qwen2.5-0.5B's shape (made with
# `sable make-random-model`), batch 1 and 8. Usage: bench/cpu_decode/run.sh [BUILD_DIR] [STEPS]
# Results go to stdout; copy them into bench/NOTES.md "CPU decode" with the machine description.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
STEPS=${2:-32}
BENCH=$BUILD/bin/sable_bench_cpu_decode
[ -x "$BENCH" ] || BENCH=$BUILD/bench/cpu_decode/sable_bench_cpu_decode
RANDOM_DIR=${SABLE_BENCH_MODEL_DIR:-/tmp/sable-bench-models}/qwen2.5-0.5b-random

echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}"
for m in llama mistral qwen2 qwen3; do
  "$BENCH" --model "$ROOT/tests/golden/models/$m" --batch 1,8 --prompt 32 --steps "$STEPS"
done
"$BENCH" --model "$("$ROOT/scripts/default-model.sh")" --batch 1,8 --prompt 32 --steps "$STEPS"
if [ ! -f "$RANDOM_DIR/model.safetensors" ]; then
  "$BUILD/bin/sable" make-random-model --config "$ROOT/bench/configs/qwen2.5-0.5b.json" \
    --out "$RANDOM_DIR"
fi
"$BENCH" --model "$RANDOM_DIR" --batch 1,8 --prompt 32 --steps "$STEPS"
