#!/usr/bin/env bash
# Sable against llama.cpp on the CPU of a machine without internet (the 16-core device host), in
# one command, from the repository root of a carried tree:
#   1. unpacks .carry/cpu-bench.tar.xz (made here by bench/cpu_decode/bundle.sh: Sable's CPU bench
#      with the shared libraries the device image lacks, and llama.cpp's source), or builds
#      Sable's bench in build-cpu/ when no bundle was carried (needs OpenBLAS, spdlog, fmt, CLI11);
#   2. builds llama-batched-bench from the carried source with GGML_NATIVE=ON (the host's own
#      instruction set, as Sable picks its kernels at run time), unless $LLAMA_BENCH or
#      bench/cpu_decode/bin/llama-batched-bench already names one;
#   3. writes the two bench files with the Python standard library (make_bench_gguf.py: a
#      SmolLM2-135M-shaped Q4_1 file, ~98 MB, and a Qwen2.5-0.5B-shaped Q8_0 file, ~531 MB);
#   4. runs vs_llamacpp.py on both (batch 1 and 8, prompt 32, 32 steps, engines alternating,
#      $SABLE_VS_STEPS steps and $SABLE_VS_REPEAT rounds where set: more for a noisy host),
#      median of 3) for each thread count: default 16 then 1.
# With SABLE_LLAMA_NO_AMX=1 (and a host with amx_int8) step 2 also builds llama.cpp without AMX
# (GGML_NATIVE=OFF, AVX-512 + VNNI on, AMX off) and step 4 runs a second table with it: on such a
# host llama.cpp's native build repacks Q4_0 / Q4_1 / Q8_0 weights for AMX tiles (ggml-cpu/amx)
# and runs every batch > 1 and prefill on them, which Sable's 256-bit tables do not use; the two
# tables separate what AMX buys from the rest (bench/NOTES.md "Q4_0 / Q4_1 tiles"). It adds a
# build of a few minutes and a second run: with the default 16 and 1 threads, pass one count.
# Usage (device call: carry .carry/cpu-bench.tar.xz): bench/cpu_decode/device_host.sh [THREADS...]
# Results: stdout, and $OUT/cpu_vs_llamacpp.txt when $OUT is set; copy them into bench/NOTES.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=${SABLE_CPU_BUILD:-build-cpu}
GGUF_DIR=${SABLE_BENCH_GGUF_DIR:-/tmp}
THREADS=("$@")
[ ${#THREADS[@]} -gt 0 ] || THREADS=(16 1)
log=${OUT:-/tmp}/cpu_vs_llamacpp.txt
t0=$SECONDS

if [ -f .carry/cpu-bench.tar.xz ]; then
  tar -xJf .carry/cpu-bench.tar.xz
  # Then the GPU bundle's libraries, for a lean CPU bundle (bundle.sh, SABLE_CPU_BUNDLE_LEAN=1).
  gpu_libs=$ROOT/${SABLE_GPU_BUILD:-build}/lib-carry
  export LD_LIBRARY_PATH=$ROOT/$BUILD/lib-carry:$gpu_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
elif [ ! -x "$BUILD/bin/sable_bench_cpu_decode" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSABLE_CUDA=OFF >/dev/null
  ninja -C "$BUILD" sable_bench_cpu_decode sable_plugins >/dev/null
fi
"$BUILD/bin/sable_bench_cpu_decode" --help >/dev/null ||
  { echo "device_host: $BUILD/bin/sable_bench_cpu_decode does not run here" >&2; exit 1; }

LLAMA_BENCH=${LLAMA_BENCH:-bench/cpu_decode/bin/llama-batched-bench}
if [ ! -x "$LLAMA_BENCH" ]; then
  [ -d llama.cpp-src ] ||
    { echo "device_host: no llama-batched-bench and no llama.cpp-src to build it (bundle.sh)" >&2; exit 1; }
  cmake -S llama.cpp-src -B llama.cpp-src/build -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE=ON -DGGML_CUDA=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DBUILD_SHARED_LIBS=OFF >/dev/null
  ninja -C llama.cpp-src/build llama-batched-bench >/dev/null
  mkdir -p "$(dirname "$LLAMA_BENCH")"
  cp llama.cpp-src/build/bin/llama-batched-bench "$LLAMA_BENCH"
fi
LLAMA_NO_AMX=""
if [ "${SABLE_LLAMA_NO_AMX:-0}" = 1 ]; then
  LLAMA_NO_AMX=${LLAMA_BENCH}-noamx
  if [ ! -x "$LLAMA_NO_AMX" ]; then
    [ -d llama.cpp-src ] || { echo "device_host: no llama.cpp-src for the no-AMX build" >&2; exit 1; }
    cmake -S llama.cpp-src -B llama.cpp-src/build-noamx -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
      -DGGML_AVX_VNNI=ON -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AMX_INT8=OFF \
      -DGGML_CUDA=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
      -DLLAMA_BUILD_SERVER=OFF -DBUILD_SHARED_LIBS=OFF >/dev/null
    ninja -C llama.cpp-src/build-noamx llama-batched-bench >/dev/null
    cp llama.cpp-src/build-noamx/bin/llama-batched-bench "$LLAMA_NO_AMX"
  fi
fi
echo "# built in $((SECONDS - t0)) s" >&2

for shape in smollm-q4_1 qwen-q8_0; do
  [ -s "$GGUF_DIR/$shape.gguf" ] ||
    python3 bench/cpu_decode/make_bench_gguf.py "$shape" "$GGUF_DIR/$shape.gguf"
done

commit=$(git rev-parse --short HEAD 2>/dev/null) || commit=unknown
probe=$("$BUILD/bin/sable_bench_cpu_decode" --model "$GGUF_DIR/smollm-q4_1.gguf" --batch 1 \
  --prompt 8 --steps 1 --plugin-dir "$BUILD/bin/plugins" 2>&1 || true)
# OpenBLAS before 0.3.25 (the carried one is Debian 12's 0.3.21) falls back to its SSE3 Prescott
# kernels on Intel models it does not know; Sable's log names the core to ask for instead.
blas_note=""
override=$(grep -o 'OPENBLAS_CORETYPE=[A-Za-z]*' <<<"$probe" | head -1 || true)
if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ -n "$override" ]; then
  export "${override?}"
  blas_note=" (detected: $(grep -o 'blas=[A-Za-z0-9_]*' <<<"$probe"); running with $override)"
  probe=$("$BUILD/bin/sable_bench_cpu_decode" --model "$GGUF_DIR/smollm-q4_1.gguf" --batch 1 \
    --prompt 8 --steps 1 --plugin-dir "$BUILD/bin/plugins" 2>&1 || true)
fi
probe=$(grep '^model=' <<<"$probe" || true)
{
  echo "# $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
    "flags: $(grep -m1 -o -w -e avx512_vnni -e avx_vnni -e avx512f -e avx2 -e amx_int8 /proc/cpuinfo | sort -u | xargs)," \
    "commit $commit," \
    "Sable kernels: $(grep -o 'kernels=[a-z0-9]*' <<<"$probe" || echo unknown)," \
    "$(grep -o 'blas=[A-Za-z0-9_]*' <<<"$probe" || echo 'blas=unknown')$blas_note"
  for t in "${THREADS[@]}"; do
    for lb in "$LLAMA_BENCH" $LLAMA_NO_AMX; do
      echo "# llama.cpp: $lb"
      python3 bench/cpu_decode/vs_llamacpp.py --build "$BUILD" --llama-bench "$lb" \
        --model "$GGUF_DIR/smollm-q4_1.gguf" --model "$GGUF_DIR/qwen-q8_0.gguf" --threads "$t" \
        --batch 1,8 --prompt 32 --steps "${SABLE_VS_STEPS:-32}" --repeat "${SABLE_VS_REPEAT:-3}"
    done
  done
} 2>&1 | tee "$log"
echo "# done in $((SECONDS - t0)) s" >&2
