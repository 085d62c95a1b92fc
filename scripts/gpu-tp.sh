#!/usr/bin/env bash
# Tensor parallelism on a machine with two or more GPUs (issue 18's acceptance runs), one device
# call per stage so each fits the device tool's 10-minute limit. Build the bundle here first:
#   scripts/gpu-bundle.sh sable tp_golden_gpu_test model_golden_gpu_test cuda_ops_test
# then on the device (repo root, the bundle carried in .carry/):
#   scripts/gpu-tp.sh tests    the NCCL communicator and every golden model at TP 2 (bf16 bounds,
#                              graphs vs eager), cuda_ops_test (embedding_shard), a dying rank
#   scripts/gpu-tp.sh bs1      Llama-3.1-8B random checkpoint (made once, 16 GB), batch 1 decode
#                              (128 in, 256 out), TP 1 then TP 2 on the same machine
#   scripts/gpu-tp.sh ci       the same checkpoint, SGLang's CI offline workload (CI_PROMPTS,
#                              default 64, of 4096/2048), TP 1 then TP 2
#   scripts/gpu-tp.sh 70b      70B-shaped (40 of 80 layers, 68 GiB bf16; the 8B one is deleted
#                              first for disk) at TP 2: batch 1 and the CI workload
# Results: $OUT/tp.jsonl (sable bench result lines, tagged) and $OUT/*.log; the rows go to
# bench/NOTES.md "Tensor parallelism on nvidia-h200-x2". SABLE_TP (default 2) sets the TP size.
set -uo pipefail
B=${SABLE_GPU_BUILD:-build-gpu}
stage=${1:-tests}
tp=${SABLE_TP:-2}
out=${OUT:-/tmp/sable-out}
models=${SABLE_BENCH_MODELS:-/tmp/sable-models}
mkdir -p "$out" "$models"
# The binaries carry absolute paths of the build machine (/work/main/...): mirror them.
if [ "$(pwd)" != /work/main ]; then mkdir -p /work && ln -sfn "$(pwd)" /work/main; fi
cd /work/main
find tests/golden -name '*.json.xz' -exec xz -dkf {} \;
[ -x $B/bin/sable ] || tar -xJf .carry/gpu-bundle.tar.xz || { echo "no bundle in .carry/"; exit 1; }
export LD_LIBRARY_PATH=/work/main/$B/lib-carry:${LD_LIBRARY_PATH:-}
export NCCL_NVLS_ENABLE=0
bin=$B/bin
gpus=$(nvidia-smi --query-gpu=name --format=csv,noheader | wc -l)
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
echo "$gpus x $gpu"
((gpus >= tp)) || { echo "TP $tp needs $tp GPUs, this machine has $gpus"; exit 1; }

make_model() {  # dir config: random bf16 weights at real shapes + the Llama-3 tokenizer
  [ -f "$models/$1/config.json" ] && return 0
  local t0=$SECONDS
  "$bin/sable" make-random-model --config "bench/configs/$2.json" --out "$models/$1" \
    --shard-size-gb 5 >/dev/null || exit 1
  cp tests/golden/tokenizers/llama3/tokenizer*.json "$models/$1/"
  echo "made $1 in $((SECONDS - t0)) s ($(du -sh "$models/$1" | cut -f1))"
}
offline() {  # model tp tag args...
  local m=$1 n=$2 tag=$3
  shift 3
  "$bin/sable" bench offline --model-path "$models/$m" --device cuda --tp-size "$n" \
    --log-level info --result-file "$out/tp.jsonl" --tag "$tag tp$n $gpu" "$@" >"$out/$tag-tp$n.log" 2>&1
  echo "rc=$? $tag TP $n"
  grep -E "tp rank|throughput|Output token|Median|error|Error" "$out/$tag-tp$n.log" | head -12
}
bs1() { offline "$1" "$2" "$3-bs1" --dataset-name random-ids --tokenize-prompt --num-prompts 1 \
  --random-input-len 128 --random-output-len 256 --random-range-ratio 1 --seed 0; }
ci() { offline "$1" "$2" "$3-ci${CI_PROMPTS:-64}" --dataset-name random-ids --tokenize-prompt \
  --num-prompts "${CI_PROMPTS:-64}" --random-input-len 4096 --random-output-len 2048 \
  --random-range-ratio 0 --seed 0; }

case $stage in
  tests)
    nvidia-smi topo -m
    for t in tp_golden_gpu_test cuda_ops_test; do
      timeout -k 5 300 $B/tests/$t >"$out/$t.log" 2>&1
      echo "rc=$? $t: $(grep -E '^\[  (PASSED|FAILED)' "$out/$t.log" | tr '\n' ' ')"
      grep -E 'Failure|FAILED|Expected|Which is' "$out/$t.log" | head -30
    done
    # A rank dying while serving stops the server (exit 1, the rank named), never a hang.
    SABLE_FAULT_TP_RANK=1:forward:20 timeout -k 5 120 "$bin/sable" serve --device cuda \
      --model-path tests/golden/models/qwen2_tok --tp-size "$tp" --port 30917 >"$out/dying.log" 2>&1 &
    pid=$!
    python3 - <<'PY'  # wait for the server, then one request long enough to reach forward 20
import json, time, urllib.request
for _ in range(60):
    try:
        urllib.request.urlopen("http://127.0.0.1:30917/health", timeout=2)
        break
    except Exception:
        time.sleep(1)
body = json.dumps({"text": "hello", "sampling_params": {"max_new_tokens": 64}}).encode()
req = urllib.request.Request("http://127.0.0.1:30917/generate", body,
                             {"Content-Type": "application/json"})
try:
    urllib.request.urlopen(req, timeout=60).read()
except Exception as e:
    print("request ended with", type(e).__name__)
PY
    wait $pid
    echo "rc=$? dying rank (want 1): $(grep -o 'stopping the server.*' "$out/dying.log" | head -1)"
    grep "tp rank" "$out/dying.log" ;;
  bs1)
    make_model llama8b llama-3.1-8b
    for n in 1 "$tp"; do bs1 llama8b "$n" 8b; done ;;
  ci)
    make_model llama8b llama-3.1-8b
    for n in 1 "$tp"; do ci llama8b "$n" 8b; done ;;
  70b)
    rm -rf "${models:?}/llama8b"
    make_model llama70b40 llama-3.1-70b-40l
    bs1 llama70b40 "$tp" 70b40
    ci llama70b40 "$tp" 70b40 ;;
  *) echo "usage: scripts/gpu-tp.sh tests|bs1|ci|70b"; exit 2 ;;
esac
