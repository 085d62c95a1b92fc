#!/usr/bin/env bash
# Builds the CUDA configuration here (the device machine has no cpp-httplib, PCRE2 or OpenBLAS of
# the right versions) and packs the binaries plus the shared libraries they need, which the device
# image lacks, into .carry/gpu-bundle.tar.xz. scripts/gpu-check.sh unpacks it on the device.
#   usage: scripts/gpu-bundle.sh [targets...]   (default: everything)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${SABLE_GPU_BUILD:-build-gpu}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSABLE_CUDA=ON >/dev/null
# The plugins always (sable_plugins): a bundle of named targets otherwise carries only the plugins
# those targets happen to depend on, and `sable serve` then runs without a grammar backend.
# And the `sable` program always: gpu-bench.sh makes its random-weight models with
# `sable make-random-model`, so a bench bundle without it measures nothing (NOTES v23).
if (($#)); then
  case " $* " in *" sable "*) ;; *) set -- "$@" sable ;; esac
fi
ninja -C "$build" -j "$(nproc)" "$@" $( (($#)) && echo sable_plugins)
stage=$(mktemp -d)
mkdir -p "$stage/$build/lib-carry"
# Programs: the named targets only when targets were given, every one otherwise; plugins always.
mkdir -p "$stage/$build/bin"
cp -a "$build/bin/plugins" "$stage/$build/bin/"
if (($#)); then
  for t in "$@"; do
    [ -f "$build/bin/$t" ] && cp -a "$build/bin/$t" "$stage/$build/bin/"
    [ -f "$build/bin/lib$t.so" ] && cp -a "$build/bin/lib$t.so" "$stage/$build/bin/"  # sable_trace
  done
else
  cp -a "$build/bin/." "$stage/$build/bin/"
fi
# Test binaries: the named targets only when targets were given (the device call carries at most
# 64 MiB with the working tree), every one otherwise.
if [ -d "$build/tests" ]; then
  mkdir -p "$stage/$build/tests"
  if (($#)); then
    for t in "$@"; do [ -f "$build/tests/$t" ] && cp -a "$build/tests/$t" "$stage/$build/tests/"; done
  else
    cp -a "$build/tests/." "$stage/$build/tests/"
  fi
fi
# Non-system, non-CUDA libraries the binaries link against (OpenSSL 3 is part of the device image).
for f in "$build"/bin/* "$build"/bin/plugins/* "$build"/tests/*; do
  [ -f "$f" ] && [ -x "$f" ] || continue  # the tracer library too (it links CUPTI)
  ldd "$f" 2>/dev/null | awk '/=> \//{print $3}'
done | sort -u | grep -E 'cupti|yaml-cpp|spdlog|fmt|pcre2|utf8proc|openblas|gomp|gfortran|quadmath|boost|httplib|brotli|jpeg|png|webp|sharpyuv' |
  while read -r lib; do cp -L "$lib" "$stage/$build/lib-carry/"; done
# The device call carries at most 64 MiB with the working tree (~56 MB of it tracked files):
# symbols stripped, strongest compression.
find "$stage" -type f \( -perm -u+x -o -name '*.so*' \) -exec strip --strip-unneeded {} + 2>/dev/null || true
mkdir -p .carry
# Packed beside the repository and renamed into place: a device call started meanwhile carries
# the old bundle or the new one, never half of one.
packed=$(mktemp -p "$(dirname "$PWD")" gpu-bundle.XXXXXX)
tar -C "$stage" -cf - "$build" | xz -9 -T0 >"$packed"
chmod 644 "$packed"
mv -f "$packed" .carry/gpu-bundle.tar.xz
rm -rf "$stage"
ls -la .carry/gpu-bundle.tar.xz
