#!/usr/bin/env bash
# Embedding throughput of a BERT-base-shaped encoder and a Qwen2.5-0.5B-shaped decoder (random
# bf16 weights from `sable make-random-model`), batch 64 at 128 and 512 tokens.
# Usage: bench/scoring/run.sh [BUILD_DIR] [DEVICE] [BATCH]
# Results go to stdout; copy them into bench/NOTES.md "Scoring throughput" with the machine.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
DEVICE=${2:-cpu}
BATCH=${3:-64}
BENCH=$BUILD/bin/sable_bench_scoring
[ -x "$BENCH" ] || BENCH=$BUILD/bench/scoring/sable_bench_scoring
MODELS=${SABLE_BENCH_MODEL_DIR:-/tmp/sable-bench-models}

echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), device $DEVICE"
# BERT-base's context is 512 positions and, as in SGLang, an input must be shorter than the
# context: its long case is 511 tokens.
for shape in bert-base qwen2.5-0.5b; do
  lens=128,512
  [ $shape = bert-base ] && lens=128,511
  dir=$MODELS/$shape-random
  if [ ! -f "$dir/model.safetensors" ] && [ ! -f "$dir/model.safetensors.index.json" ]; then
    "$BUILD/bin/sable" make-random-model --config "$ROOT/bench/configs/$shape.json" --out "$dir"
  fi
  "$BENCH" --model "$dir" --device "$DEVICE" --batch "$BATCH" --len $lens
done
