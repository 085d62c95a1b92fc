#!/usr/bin/env bash
# Weight-read time of an 8B-shaped safetensors checkpoint (Llama-3.1-8B shapes, random bf16 weights,
# 16 GB in 5 GiB shards), made once with `sable make-random-model`, read cold (pages dropped), then
# warm. Usage: bench/load/run_8b.sh [BUILD_DIR] [CHECKPOINT_DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
CKPT=${2:-/tmp/sable-llama-3.1-8b-random}
if [ ! -f "$CKPT/model.safetensors.index.json" ]; then
  "$BUILD/bin/sable" make-random-model --config "$ROOT/bench/configs/llama-3.1-8b.json" \
    --out "$CKPT" --shard-size-gb 5
fi
echo "# $CKPT ($(du -shL "$CKPT" | cut -f1)), $(nproc --all) cores, load average $(cut -d' ' -f1 /proc/loadavg)"
for cache in --cold ""; do
  "$BUILD/bin/sable_bench_weights_read" --model-path "$CKPT" $cache \
    --result-file "$ROOT/bench/results/load_time.jsonl" --tag "$(nproc --all) cores"
done
