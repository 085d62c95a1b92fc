#!/usr/bin/env bash
# Sable against llama.cpp on the CPU of a machine without internet (the 16-core device host), in
# one command from a carried tree: builds Sable's CPU bench (build-cpu/, CPU only), writes the two
# bench GGUF files with the standard library only (make_bench_gguf.py: a SmolLM2-135M-shaped Q4_1
# file, ~98 MB, and a Qwen2.5-0.5B-shaped Q8_0 file, ~531 MB, under $SABLE_BENCH_GGUF_DIR,
# default /tmp), then runs vs_llamacpp.py on both for each thread count (default: 16, then 1).
# llama.cpp's side is a llama-batched-bench binary: $LLAMA_BENCH, default
# bench/cpu_decode/bin/llama-batched-bench (ignored by git; carry it with the tree; it needs only
# libgomp and the C++ runtime). Usage: bench/cpu_decode/device_host.sh [THREADS...]
# Results: the Markdown table and JSON lines of each run on stdout; copy them into bench/NOTES.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${SABLE_CPU_BUILD:-$ROOT/build-cpu}
LLAMA_BENCH=${LLAMA_BENCH:-$ROOT/bench/cpu_decode/bin/llama-batched-bench}
GGUF_DIR=${SABLE_BENCH_GGUF_DIR:-/tmp}
THREADS=("$@")
[ ${#THREADS[@]} -gt 0 ] || THREADS=(16 1)

if [ ! -x "$LLAMA_BENCH" ]; then
  echo "device_host: no llama-batched-bench at $LLAMA_BENCH (set LLAMA_BENCH)" >&2
  exit 1
fi
if [ ! -x "$BUILD/bin/sable_bench_cpu_decode" ] || [ ! -d "$BUILD/bin/plugins" ]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSABLE_CUDA=OFF >/dev/null
  ninja -C "$BUILD" sable_bench_cpu_decode sable_plugins >/dev/null
fi
for shape in smollm-q4_1 qwen-q8_0; do
  [ -s "$GGUF_DIR/$shape.gguf" ] ||
    python3 "$ROOT/bench/cpu_decode/make_bench_gguf.py" "$shape" "$GGUF_DIR/$shape.gguf"
done

echo "# $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
  "flags: $(grep -m1 -o -w -e avx512_vnni -e avx_vnni -e avx2 /proc/cpuinfo | sort -u | xargs)," \
  "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
for t in "${THREADS[@]}"; do
  python3 "$ROOT/bench/cpu_decode/vs_llamacpp.py" --build "$BUILD" --llama-bench "$LLAMA_BENCH" \
    --model "$GGUF_DIR/smollm-q4_1.gguf" --model "$GGUF_DIR/qwen-q8_0.gguf" --threads "$t" \
    --batch 1,8 --prompt 32 --steps 32 --repeat 3
done
