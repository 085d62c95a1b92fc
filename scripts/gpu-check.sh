#!/usr/bin/env bash
# One device call does it all: unpack the bundle from scripts/gpu-bundle.sh (or build here when no
# bundle was carried), run the GPU test suites and the benchmarks, print one table at the end.
#   usage (device, repo root): scripts/gpu-check.sh [tests|bench|all]   (default all)
# SABLE_BUDGET_S: seconds for the whole run; suites and bench items not started within it are
# skipped (the device call's limit then still leaves time for the summary and the files).
set -uo pipefail
[ -n "${SABLE_BUDGET_S:-}" ] && export SABLE_DEADLINE=$(($(date +%s) + SABLE_BUDGET_S))
B=${SABLE_GPU_BUILD:-build-gpu}  # the build folder the bundle holds (scripts/gpu-bundle.sh)
what=${1:-all}
root=$(pwd)
out=${OUT:-/tmp/sable-out}
mkdir -p "$out"
# The binaries carry absolute paths of the build machine (/work/main/...): mirror them.
if [ "$root" != /work/main ]; then mkdir -p /work && ln -sfn "$root" /work/main; fi
cd /work/main
# Golden files stored xz-packed (cmake/SableGoldenData.cmake): unpack them as configure would.
find tests/golden -name '*.json.xz' -exec xz -dkf {} \;
if [ -f .carry/gpu-bundle.tar.xz ]; then
  tar -xJf .carry/gpu-bundle.tar.xz
else
  cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DSABLE_CUDA=ON -DSABLE_BUILD_SERVER=OFF &&
    ninja -C $B || exit 1
fi
export LD_LIBRARY_PATH=/work/main/$B/lib-carry:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
summary=()
if [ "$what" = tests ] || [ "$what" = all ]; then
  # SABLE_TESTS: space-separated test binary names (default: every *_test in the bundle);
  # SABLE_GTEST_FILTER: a --gtest_filter for each of them (e.g. '*Lora*:*Rope*', a short call).
  tests=()
  for n in ${SABLE_TESTS:-*_test}; do tests+=($B/tests/$n); done
  # Each suite runs once per variant: the defaults, then with the fast paths off (PDL launches,
  # the GQA-packed decode kernel, the fused decode projections, the wgmma prefill, the sampler's
  # radix cuts; bench/NOTES.md v4, v5, v16, v26).
  # SABLE_TEST_VARIANTS=1 runs the defaults only (a short device call).
  variants=("" "SABLE_PDL=0 SABLE_FLASH_DECODE_KERNEL=0 SABLE_FUSED_GEMV=0 SABLE_PREFILL_WGMMA=0")
  variants=("${variants[@]:0:${SABLE_TEST_VARIANTS:-2}}")
  for t in "${tests[@]}"; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    if [ -n "${SABLE_DEADLINE:-}" ] && [ "$(date +%s)" -ge "$SABLE_DEADLINE" ]; then
      summary+=("$(printf '%-34s skipped: past SABLE_DEADLINE' "$name")")
      continue
    fi
    for i in "${!variants[@]}"; do
      v=${variants[$i]}
      log="$out/$name.$i.log"
      # A suite gets SABLE_SUITE_TIMEOUT seconds (default 60): a hang names the case it hung in.
      t0=$SECONDS
      env $v timeout -k 5 "${SABLE_SUITE_TIMEOUT:-60}" "$t" ${SABLE_GTEST_FILTER:+--gtest_filter="$SABLE_GTEST_FILTER"} >"$log" 2>&1
      rc=$?
      case $rc in 0) r=PASS ;; 124 | 137) r=TIMEOUT ;; *) r=FAIL ;; esac
      skipped=$(grep -c '\[  SKIPPED \]' "$log" || true)
      summary+=("$(printf '%-34s %-44s %s in %ss (skipped %s)' "$name" "${v:-defaults}" "$r" "$((SECONDS - t0))" "$skipped")")
      [ "$r" = FAIL ] && grep -E 'Failure|error|FAILED|Expected|Which is|rel' "$log" | head -40
      [ "$r" = TIMEOUT ] && { echo "== $name ${v:-defaults}: timed out; last lines:"; tail -5 "$log"; }
      # The slowest cases, so that every suite can be kept well under the limit.
      grep -E '^\[       OK \].*\([0-9]+ ms\)' "$log" | sed -E 's/.*OK \] (.*) \(([0-9]+) ms\)/\2 ms \1/' |
        sort -rn | head -3 | sed "s/^/  slowest ${name}: /"
    done
  done
fi
if [ "$what" = bench ] || [ "$what" = all ]; then
  [ -x scripts/gpu-bench.sh ] && scripts/gpu-bench.sh "$out" ${SABLE_BENCH:-} 2>&1 | tee "$out/bench.txt"
fi
# The device call returns a handful of files: pack every log into one archive (logs.tgz).
( cd "$out" && ls *.log >/dev/null 2>&1 && tar -czf logs.tgz --remove-files *.log )
echo
echo "== summary =="
printf '%s\n' "${summary[@]}"
