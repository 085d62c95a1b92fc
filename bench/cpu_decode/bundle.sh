#!/usr/bin/env bash
# Packs what bench/cpu_decode/device_host.sh needs on a machine that cannot fetch or build Sable's
# dependencies (the 16-core device host has no OpenBLAS, spdlog or fmt) into
# .carry/cpu-bench.tar.xz (git-ignored; name it in the device call's `carry`):
#   - Sable's CPU bench, built here (CPU only, Release, $SABLE_CPU_BUILD, default build-cpu/):
#     sable_bench_cpu_decode, the plugins, and the non-system shared libraries they load (lib-carry/);
#   - llama.cpp's source ($LLAMA_CPP_SRC: a llama.cpp checkout, e.g. the one vendored in the PyPI
#     sdist of llama-cpp-python), without the GPU backends, the server and the examples (~1.3 MB
#     packed), so that device_host.sh builds llama-batched-bench there with GGML_NATIVE=ON: a
#     binary built here would target this VM's AVX2 and handicap llama.cpp on an AVX-512 host.
#     Without $LLAMA_CPP_SRC, a prebuilt bench/cpu_decode/bin/llama-batched-bench is packed instead.
# Usage: LLAMA_CPP_SRC=/path/to/llama.cpp bench/cpu_decode/bundle.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=${SABLE_CPU_BUILD:-build-cpu}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSABLE_CUDA=OFF >/dev/null
ninja -C "$BUILD" sable_bench_cpu_decode sable_plugins
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$BUILD/bin" "$stage/$BUILD/lib-carry"
skip_libs='^$'  # no library path is empty: nothing skipped
[ "${SABLE_CPU_BUNDLE_LEAN:-0}" = 1 ] && skip_libs='openblas|gfortran'

cp -a "$BUILD/bin/sable_bench_cpu_decode" "$BUILD/bin/plugins" "$stage/$BUILD/bin/"
for f in "$BUILD/bin/sable_bench_cpu_decode" "$BUILD"/bin/plugins/*; do
  ldd "$f" | awk '/=> \//{print $3}'
done | sort -u | grep -E 'openblas|spdlog|fmt|gfortran|quadmath|gomp|yaml-cpp|pcre2|utf8proc' |
  # SABLE_CPU_BUNDLE_LEAN=1: leave out OpenBLAS and gfortran (~6 MB packed) when the same call
  # carries scripts/gpu-bundle.sh's bundle, whose lib-carry has them (device_host.sh looks there
  # too): the carried files and the tree must stay under the device call's 64 MiB.
  grep -v -E "$skip_libs" |
  while read -r lib; do cp -L "$lib" "$stage/$BUILD/lib-carry/"; done
find "$stage" -type f \( -perm -u+x -o -name '*.so*' \) -exec strip --strip-unneeded {} + 2>/dev/null || true
if [ -n "${LLAMA_CPP_SRC:-}" ]; then
  [ -f "$LLAMA_CPP_SRC/ggml/src/ggml-cpu/CMakeLists.txt" ] ||
    { echo "bundle: $LLAMA_CPP_SRC is not a llama.cpp source tree" >&2; exit 1; }
  mkdir -p "$stage/llama.cpp-src"
  tar -C "$LLAMA_CPP_SRC" -cf - --exclude='ggml/src/ggml-cuda' --exclude='ggml/src/ggml-vulkan' \
    --exclude='ggml/src/ggml-sycl' --exclude='ggml/src/ggml-metal' --exclude='ggml/src/ggml-opencl' \
    --exclude='ggml/src/ggml-cann' --exclude='ggml/src/ggml-musa' --exclude='ggml/src/ggml-hip' \
    --exclude='ggml/src/ggml-webgpu' --exclude='tools/server' --exclude='vendor/miniaudio' \
    --exclude='vendor/stb' \
    CMakeLists.txt LICENSE cmake ggml src include common tools vendor licenses |
    tar -C "$stage/llama.cpp-src" -xf -
elif [ -x bench/cpu_decode/bin/llama-batched-bench ]; then
  mkdir -p "$stage/bench/cpu_decode/bin"
  cp -a bench/cpu_decode/bin/llama-batched-bench "$stage/bench/cpu_decode/bin/"
else
  echo "bundle: set LLAMA_CPP_SRC (or put a llama-batched-bench in bench/cpu_decode/bin/)" >&2
  exit 1
fi
mkdir -p .carry
tar -C "$stage" -cf - . | xz -9 -T0 >.carry/cpu-bench.tar.xz
ls -la .carry/cpu-bench.tar.xz
