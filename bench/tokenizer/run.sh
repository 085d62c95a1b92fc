#!/usr/bin/env bash
# Builds tokenizer_bench, generates the corpus, runs Sable and HF `tokenizers` on the same text
# and prints a table. Usage: bench/tokenizer/run.sh [build_dir] [corpus_MB]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${1:-$root/build}"
mb="${2:-4}"
[ -f "$build/build.ninja" ] || cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$build" tokenizer_bench >/dev/null
corpus="$(mktemp -d)/corpus.json"
python3 "$here/make_corpus.py" "$corpus" "$mb"
printf '%-8s %-6s %8s %8s %12s %10s\n' model impl threads MB/s tokens/s tokens
for model in qwen3 llama3 llama2; do
  dir="$root/tests/golden/tokenizers/$model"
  { "$build/bin/tokenizer_bench" "$dir" "$corpus"; python3 "$here/hf_bench.py" "$dir" "$corpus"; } |
    while read -r impl threads mbs tps n; do
      printf '%-8s %-6s %8s %8s %12s %10s\n' "$model" "$impl" "$threads" "$mbs" "$tps" "$n"
    done
done
