#!/usr/bin/env bash
# Model load time, cold and warm page cache: `sable generate` of one token, reading the "loaded ..."
# startup line (tokenizer + weights + plugin load + KV pool, "in X s") and the wall time of the
# whole command. Cold: the checkpoint's pages are evicted first with posix_fadvise(DONTNEED) (only
# this file's pages, the rest of the machine's cache stays). Usage:
#   bench/load/run.sh [BUILD_DIR] [MODEL]      (MODEL: default the `make serve` GGUF)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
MODEL=${2:-$("$ROOT/scripts/default-model.sh")}
evict() {
  python3 - "$1" <<'PY'
import os, sys
paths = [sys.argv[1]]
if os.path.isdir(paths[0]):
    paths = [os.path.join(paths[0], f) for f in os.listdir(paths[0])]
for p in paths:
    if os.path.isfile(p):
        fd = os.open(p, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
PY
}
run() {
  local start end line
  start=$(date +%s.%N)
  line=$("$BUILD/bin/sable" generate --model-path "$MODEL" --prompt "Hi" --max-new-tokens 1 --log-level debug \
           --device cpu 2>&1 | grep -m1 "loaded ") || true
  end=$(date +%s.%N)
  printf '%-5s load %s, whole command %.2f s\n' "$1" "$(sed -n 's/.* in \([0-9.]* s\)$/\1/p' <<<"$line")" \
    "$(awk "BEGIN { print $end - $start }")"
}
echo "# $MODEL ($(du -h "$MODEL" | cut -f1)), $(nproc --all) cores, OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}, load average $(cut -d" " -f1 /proc/loadavg)"
for i in 1 2; do
  evict "$MODEL"
  run cold
  run warm
done
