#!/usr/bin/env bash
# Serving benchmark on this machine: starts `sable serve` on a free port with MODEL (default: the
# golden qwen2_tok model, a tiny random-weight Qwen2 with the real tokenizer), runs
# `sable bench serving` at a few request rates / concurrencies, streaming /generate and
# /v1/completions, and appends each summary as a JSON line to bench/results/serving_<device>.jsonl.
#
#   bench/serving/run.sh [build-dir]        e.g. bench/serving/run.sh build
# Environment: MODEL, DEVICE (cpu), NUM_PROMPTS (200), INPUT_LEN (128), OUTPUT_LEN (64).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build}"
sable="$build/bin/sable"
model="${MODEL:-$root/tests/golden/models/qwen2_tok}"
device="${DEVICE:-cpu}"
n="${NUM_PROMPTS:-200}"
in_len="${INPUT_LEN:-128}"
out_len="${OUTPUT_LEN:-64}"
results="$root/bench/results/serving_${device}.jsonl"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"

"$sable" serve --model-path "$model" --port "$port" --device "$device" --served-model-name bench \
  --log-level warning > "/tmp/sable-bench-serving-$port.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 600); do
  curl -sf "$url/health" >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { cat "/tmp/sable-bench-serving-$port.log"; exit 1; }
  sleep 0.2
done

tag="$(git -C "$root" rev-parse --short HEAD) $(nproc) cores $(basename "$model")"
run() {
  "$sable" bench serving --base-url "$url" --num-prompts "${NP:-$n}" --dataset-name random-ids \
    --tokenize-prompt --random-range-ratio 1 --random-input-len "$in_len" --random-output-len "$out_len" \
    --model bench --output-file "$results" --tag "$tag" "$@"
}
run --backend sglang --request-rate inf --max-concurrency 64
run --backend sglang --request-rate 16
run --backend openai --request-rate inf --max-concurrency 64
NP=20 run --backend sglang --request-rate inf --max-concurrency 1
