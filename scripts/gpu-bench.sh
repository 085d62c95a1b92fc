#!/usr/bin/env bash
# GPU benchmarks run by scripts/gpu-check.sh on the device: the ceilings first (copy bandwidth,
# GEMM rate), then random-weight models at real shapes (sable make-random-model) for decode speed.
#   usage: scripts/gpu-bench.sh OUT_DIR [which...]   which: ceiling decode05 decode8b  (default all)
set -uo pipefail
B=${SABLE_GPU_BUILD:-build-gpu}  # the build folder the bundle holds (scripts/gpu-bundle.sh)
out=${1:-/tmp}
shift || true
which=${*:-ceiling decode05 decode8b}
bin=/work/main/$B/bin
models=${SABLE_BENCH_MODELS:-/tmp/sable-models}
mkdir -p "$models"
# The A/B items run each of these (one word each; "default" = the environment as it is).
ab_env() { [ "$1" = default ] || echo "${1//,/ }"; }
AB_VARIANTS=${AB_VARIANTS:-"default SABLE_GEMV_HINT=1 SABLE_GEMV_ROWS=2,SABLE_GEMV_HINT=1 SABLE_FUSED_GEMV=1 SABLE_FUSED_GEMV=0 SABLE_PDL=0,SABLE_FLASH_DECODE_KERNEL=0,SABLE_FUSED_GEMV=0"}
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
ab_decode() {  # model bench-args...: sable_gpu_decode_bench under each AB_VARIANTS word
  local m=$1
  shift
  for v in $AB_VARIANTS; do
    echo "variant: $v"
    env $(ab_env "$v") "$bin/sable_gpu_decode_bench" "$models/$m" "$@"
  done | tee -a "$out/decode.txt"
}
make_model() {  # name config tokenizer: random weights at real shapes + the family's tokenizer
  [ -f "$models/$1/config.json" ] && [ -f "$models/$1/tokenizer.json" ] && return 0
  local t0=$SECONDS tok=/work/main/tests/golden/tokenizers/$3
  # The golden tokenizers are stored xz-packed (gpu-check.sh unpacks them; a direct call may not).
  for f in "$tok"/*.json.xz; do [ -f "$f" ] && [ ! -f "${f%.xz}" ] && xz -dk "$f"; done
  [ -f "$models/$1/config.json" ] ||
    "$bin/sable" make-random-model --config "/work/main/bench/configs/$2.json" --out "$models/$1" >/dev/null &&
    cp "$tok"/tokenizer*.json "$models/$1/" &&
    echo "made $1 in $((SECONDS - t0)) s"
}
lora_models() {  # the 8B model, 16 rank-16 adapters (bench/lora); $all: their paths
  make_model llama8b llama-3.1-8b llama3
  [ -d "$models/lora8b/a15" ] || python3 /work/main/bench/lora/make_adapters.py "$models/llama8b" "$models/lora8b"
  all=$(for i in $(seq 0 15); do printf '%s ' "$models/lora8b/a$i"; done)
}
offline() {  # model args...
  local m=$1
  shift
  "$bin/sable" bench offline --model-path "$models/$m" --device cuda --log-level info \
    --result-file "$out/offline.jsonl" --tag "$m ${gpu:-GPU}" "$@" 2>&1 |
    grep -E "throughput|^Request|^Input|^Output|device memory:|rror" | sed "s/^/offline $m $* | /"
}
for w in $which; do
  # SABLE_DEADLINE (epoch seconds; gpu-check.sh sets it from SABLE_BUDGET_S): items not started by
  # then are skipped, so a device call's time goes to the items listed first.
  if [ -n "${SABLE_DEADLINE:-}" ] && [ "$(date +%s)" -ge "$SABLE_DEADLINE" ]; then
    echo "skipped $w: past SABLE_DEADLINE"
    continue
  fi
  case $w in
    ceiling) "$bin/sable_gpu_ceiling" | tee "$out/ceiling.txt" ;;
    decode05)
      make_model qwen05 qwen2.5-0.5b qwen3
      for bs in 1 8 32; do "$bin/sable_gpu_decode_bench" "$models/qwen05" $bs 128 256 1; done | tee -a "$out/decode.txt"
      "$bin/sable_gpu_decode_bench" "$models/qwen05" 1 128 256 0 | tee -a "$out/decode.txt" ;;
    decode8b)
      make_model llama8b llama-3.1-8b llama3
      for bs in 1 16 64; do "$bin/sable_gpu_decode_bench" "$models/llama8b" $bs 128 256 1; done | tee -a "$out/decode.txt" ;;
    attn_prefill)  # the flash prefill kernel alone: 32 layers of an 8k prompt, and 4k after 4k cached
      "$bin/sable_attention_prefill_bench" 8192
      "$bin/sable_attention_prefill_bench" 4096 4096 --no-legacy ;;
    wgmma_ab)  # issue 14: the wgmma prefill kernel's variants (WGMMA_AB, env words) against mma.sync
      for v in ${WGMMA_AB:-SABLE_PREFILL_WGMMA=0 SABLE_PREFILL_WGMMA_HEADS=1 SABLE_PREFILL_WGMMA_HEADS=2 SABLE_PREFILL_WGMMA_STAGES=3,SABLE_PREFILL_WGMMA_HEADS=2 SABLE_PREFILL_WGMMA_STAGES=4,SABLE_PREFILL_WGMMA_HEADS=2 SABLE_PREFILL_WGMMA_HEADS=4 SABLE_PREFILL_WGMMA_STAGES=3,SABLE_PREFILL_WGMMA_HEADS=4 SABLE_PREFILL_WGMMA_OVERLAP=1,SABLE_PREFILL_WGMMA_HEADS=2 SABLE_PREFILL_WGMMA_OVERLAP=1,SABLE_PREFILL_WGMMA_STAGES=4,SABLE_PREFILL_WGMMA_HEADS=2 SABLE_PREFILL_WGMMA_OVERLAP=1,SABLE_PREFILL_WGMMA_HEADS=4}; do
        for shape in ${WGMMA_SHAPES:-32,8,128 14,2,64 32,8,64}; do  # 8B, Qwen2.5-0.5B, Llama-3.2-1B
          echo "wgmma_ab $shape variant: $v | $(env SABLE_PREFILL_WGMMA=1 $(ab_env "$v") "$bin/sable_attention_prefill_bench" 8192 0 --no-legacy --shape $shape | grep TFLOP)"
        done
      done | tee -a "$out/wgmma_ab.txt" ;;
    decode8b_long)  # decode attention at long contexts: 64 sequences at 4096 tokens
      make_model llama8b llama-3.1-8b llama3
      "$bin/sable_gpu_decode_bench" "$models/llama8b" 64 4096 64 1 | tee -a "$out/decode.txt" ;;
    prefill8k)  # one 8k-token prompt: prefill time (chunked at 8192)
      make_model llama8b llama-3.1-8b llama3
      "$bin/sable_gpu_decode_bench" "$models/llama8b" 1 8192 4 1 | tee -a "$out/decode.txt" ;;
    offline8b)  # N=1000 I=1024 O=256, without and with a shared 900-token prefix
      make_model llama8b llama-3.1-8b llama3
      offline llama8b --num-prompts ${OFFLINE_N:-1000} --input-len 1024 --output-len 256
      offline llama8b --num-prompts ${OFFLINE_N:-1000} --input-len 124 --shared-prefix 900 --output-len 256 ;;
    offline8b_long)  # SGLang's CI bar: 500 prompts, input 4096, output 2048
      make_model llama8b llama-3.1-8b llama3
      offline llama8b --num-prompts ${OFFLINE_LONG_N:-500} --input-len 4096 --output-len 2048 ;;
    sglang_ci)  # issue 14's bars: SGLang's CI workload (500 prompts, 4096/2048, ratio 0 and 1, seed 0)
      make_model llama8b llama-3.1-8b llama3
      for r in ${SGLANG_CI_RATIOS:-0 1}; do
        offline llama8b --dataset-name random-ids --tokenize-prompt --num-prompts 500 \
          --random-input-len 4096 --random-output-len 2048 --random-range-ratio $r --seed 0 ${SGLANG_CI_EXTRA:-}
      done ;;
    gsp)  # generated-shared-prefix (SGLang's defaults) with and without the radix cache (bar: >= 3x)
      make_model llama8b llama-3.1-8b llama3
      offline llama8b --dataset-name generated-shared-prefix --tokenize-prompt
      offline llama8b --dataset-name generated-shared-prefix --tokenize-prompt --disable-radix-cache ;;
    gsp_nocascade)  # the radix-on gsp run with the flash backend's shared-prefix pass off (A/B)
      make_model llama8b llama-3.1-8b llama3
      SABLE_CASCADE=0 offline llama8b --dataset-name generated-shared-prefix --tokenize-prompt ;;
    offline_moe)  # issue 8: Qwen1.5-MoE-A2.7B shape (60 experts, top-4, shared expert)
      make_model qwenmoe qwen1.5-moe-a2.7b qwen3
      offline qwenmoe --num-prompts ${OFFLINE_N:-1000} --input-len 1024 --output-len 256 ;;
    offline_generic)  # issue 8: impl=transformers vs the native plugin, Llama-3.2-1B shape
      make_model llama1b llama-3.2-1b llama3
      offline llama1b --num-prompts ${OFFLINE_N:-1000} --input-len 1024 --output-len 256
      offline llama1b --num-prompts ${OFFLINE_N:-1000} --input-len 1024 --output-len 256 --impl transformers ;;
    ab05)  # batch-1 decode A/B: defaults, every projection fused, none fused (v4), all fast paths off (v3)
      make_model qwen05 qwen2.5-0.5b qwen3
      ab_decode qwen05 1 128 256 1 ;;
    ab8b_long)  # long-context decode A/B: 64 x 4096, the defaults, v4 and v3 paths
      make_model llama8b llama-3.1-8b llama3
      ab_decode llama8b 64 4096 64 1 ;;
    ab8b_8long)  # 8B decode A/B at 8 x 4096 (small batch, bandwidth-bound attention)
      make_model llama8b llama-3.1-8b llama3
      ab_decode llama8b 8 4096 64 1 ;;
    ab8b_64)  # 8B decode A/B at batch 64, 128 + 64 tokens (issue 17's base step: short-context attention)
      make_model llama8b llama-3.1-8b llama3
      ab_decode llama8b 64 128 64 1 ;;
    ab8b_1)  # 8B batch-1 decode A/B: the defaults, v4 and v3 paths
      make_model llama8b llama-3.1-8b llama3
      ab_decode llama8b 1 128 256 1 ;;
    ab1b)  # Llama-3.2-1B shape, batch 1, the same A/B
      make_model llama1b llama-3.2-1b llama3
      ab_decode llama1b 1 128 256 1 ;;
    ncu8b)  # per-kernel device time of 8B batch-1 decode steps (eager): GB/s of each projection
      make_model llama8b llama-3.1-8b llama3
      ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
      "$ncu" --clock-control none --metrics gpu__time_duration.sum --csv --launch-skip 2000 \
        --launch-count ${NCU_COUNT:-400} "$bin/sable_gpu_decode_bench" "$models/llama8b" 1 128 24 0 \
        >"$out/ncu8b.csv" 2>"$out/ncu8b.err"
      python3 /work/main/scripts/ncu_summary.py "$out/ncu8b.csv" | tee "$out/ncu8b.txt" ;;
    ncu05)  # per-kernel device time of 0.5B batch-1 decode steps (eager), vs the graph step time
      make_model qwen05 qwen2.5-0.5b qwen3
      ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
      "$ncu" --clock-control none --metrics gpu__time_duration.sum --csv --launch-skip 3000 \
        --launch-count ${NCU_COUNT:-600} "$bin/sable_gpu_decode_bench" "$models/qwen05" 1 128 32 0 \
        >"$out/ncu05.csv" 2>"$out/ncu05.err"
      python3 /work/main/scripts/ncu_summary.py "$out/ncu05.csv" | tee "$out/ncu05.txt" ;;
    ncu8b_long | ncu8b_prefill)  # per-kernel device time: 8B decode at 64 x 4096 (eager), or prefill of 2 x 2048
      make_model llama8b llama-3.1-8b llama3
      ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
      if [ $w = ncu8b_long ]; then args=(64 4096 4 0) p=decode; else args=(2 2048 1 0) p=prefill; fi
      SABLE_PROFILE=$p "$ncu" --profile-from-start off --clock-control none --metrics gpu__time_duration.sum \
        --csv "$bin/sable_gpu_decode_bench" "$models/llama8b" "${args[@]}" >"$out/$w.csv" 2>"$out/$w.err"
      python3 /work/main/scripts/ncu_summary.py "$out/$w.csv" | head -30 | tee "$out/$w.txt" ;;
    ncu_attn)  # one decode-attention launch in detail (8B, batch 1, 128-token context; NCU_ATTN_ARGS="64 4096 2 0": long)
      make_model llama8b llama-3.1-8b llama3
      ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
      "$ncu" --clock-control none --kernel-name regex:decode_kernel --launch-skip 40 --launch-count 1 \
        --section SpeedOfLight --section WarpStateStats --section LaunchStats --section Occupancy \
        --section MemoryWorkloadAnalysis "$bin/sable_gpu_decode_bench" "$models/llama8b" ${NCU_ATTN_ARGS:-1 128 8 0} 2>&1 |
        grep -vE "^\[20|^==PROF==|plugin" | grep -E "[0-9]" | head -${NCU_LINES:-70} ;;
    ncu_attn_src)  # the same launch's warp stalls per SASS instruction (pc sampling), CSV in $out
      make_model llama8b llama-3.1-8b llama3
      ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
      "$ncu" --clock-control none --kernel-name regex:decode_kernel --launch-skip 40 --launch-count 1 \
        --section WarpStateStats --section SourceCounters --section SpeedOfLight --page source --csv \
        --print-source sass "$bin/sable_gpu_decode_bench" "$models/llama8b" ${NCU_ATTN_ARGS:-1 128 8 0} \
        >"$out/ncu_attn_src.csv" 2>"$out/ncu_attn_src.err"
      python3 /work/main/scripts/ncu_stalls.py "$out/ncu_attn_src.csv" | tee "$out/ncu_attn_src.txt" ;;
    moe_bf16)  # issue 14: MoE greedy agreement with the fp32 references, transformers bf16 vs Sable, this GPU
      python3 /work/main/scripts/moe_bf16_agreement.py "$out/moe_hf.json" /work/main/tests/golden/models 2>&1 |
        grep -E "moe_bf16|Error"
      SABLE_HF_BF16_AGREEMENT="$out/moe_hf.json" /work/main/$B/tests/model_golden_gpu_test \
        --gtest_filter='MoeBf16.*' 2>&1 | grep -E "moe_bf16|OK \]|FAILED|Failure|Expected|Which|SKIPPED" ;;
    gemv)  # skinny-GEMM variants side by side, M = 1 and 8 (bench/gpu_gemv)
      for m in 1 8; do "$bin/sable_gemv_variants" $m; done | tee "$out/gemv.txt" ;;
    offline05)
      make_model qwen05 qwen2.5-0.5b qwen3
      offline qwen05 --num-prompts 1000 --input-len 1024 --output-len 256 ;;
    memory8b)  # how the 8B engine splits device memory (weights, activations, KV pool), debug log
      make_model llama8b llama-3.1-8b llama3
      nvidia-smi --query-gpu=memory.used,memory.total --format=csv,noheader
      "$bin/sable" bench offline --model-path "$models/llama8b" --device cuda --log-level debug \
        --dataset-name random-ids --tokenize-prompt --num-prompts 64 --random-input-len 1024 \
        --random-output-len 16 --random-range-ratio 1 2>&1 |
        grep -v -E "plugin (model|attention|grammar)|scanning plugin" | head -40 ;;
    online8b)  # issue 14: SGLang's CI online bar (100 requests at 1/s, random 4096/2048, ratio 0): median TTFT, ITL, E2E
      make_model llama8b llama-3.1-8b llama3
      "$bin/sable" serve --model-path "$models/llama8b" --device cuda --port 30112 --log-level warning \
        >"$out/online8b.server.log" 2>&1 &
      spid=$!
      for _ in $(seq 180); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:30112/health', timeout=2)" 2>/dev/null && break; sleep 1; done
      "$bin/sable" bench serving --base-url http://127.0.0.1:30112 --dataset-name random-ids \
        --tokenizer "$models/llama8b" --tokenize-prompt --num-prompts ${ONLINE_N:-100} --request-rate 1 \
        --random-input-len 4096 --random-output-len 2048 --random-range-ratio 0 --seed 0 \
        --output-file "$out/online8b.jsonl" --tag "online8b ${gpu:-GPU}" 2>&1 |
        grep -E "Median|P99 TTFT|Successful|Output token throughput|rror" | sed "s/^/online8b | /"
      # The scheduler thread's time per step: model (forward + sampling) against host work.
      python3 -c "import json, urllib.request as u; s = json.load(u.urlopen('http://127.0.0.1:30112/server_info'))['internal_states'][0]; print('online8b | step/model/host us per step:', round(s['step_time_us'], 1), round(s['model_time_us'], 1), round(s['host_time_us'], 1), '| steps', s['forward_steps_total'])" || true
      kill $spid; wait $spid 2>/dev/null ;;
    lora8b)  # issue 17: 8B decode at batch 64 with 0, 1, 4, 16 distinct rank-16 adapters (bench/lora)
      lora_models
      paths=()
      for i in $(seq 0 15); do paths+=("a$i=$models/lora8b/a$i"); done
      "$bin/sable" serve --model-path "$models/llama8b" --device cuda --port 30111 --log-level warning \
        --lora-paths "${paths[@]}" --max-loras-per-batch 16 --max-lora-rank 16 \
        --max-running-requests 64 >"$out/lora8b.server.log" 2>&1 &
      spid=$!
      for _ in $(seq 120); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:30111/health', timeout=2)" 2>/dev/null && break; sleep 1; done
      for k in 0 1 4 16; do
        names=()
        for i in $(seq 0 $((k - 1))); do names+=(--lora-name "a$i"); done
        "$bin/sable" bench serving --base-url http://127.0.0.1:30111 --dataset-name random-ids \
          --tokenizer "$models/llama8b" --tokenize-prompt --num-prompts 256 --random-input-len 128 \
          --random-output-len 256 --random-range-ratio 1 --max-concurrency 64 "${names[@]}" 2>&1 |
          grep -E "Output token throughput|Median ITL|rror" | sed "s/^/lora8b adapters=$k | /"
      done
      kill $spid; wait $spid 2>/dev/null ;;
    lora_ab)  # issue 17: 8B decode at batch 64, 16 adapters, under each LORA_AB variant (env words;
      # "base": the same step without adapters, the bar's reference)
      lora_models
      for v in ${LORA_AB:-default SABLE_LORA_FORK=0}; do
        echo "lora_ab variant: $v"
        if [ "$v" = base ]; then
          "$bin/sable_gpu_decode_bench" "$models/llama8b" 64 128 64 1
        else
          env $(ab_env "$v") SABLE_BENCH_LORA="$all" "$bin/sable_gpu_decode_bench" "$models/llama8b" 64 128 64 1
        fi
      done 2>&1 | tee -a "$out/lora_ab.txt" ;;
    lora_decode | ncu_lora8b)  # issue 17: 8B decode step at batch 64 through the runner, 0 / 1 / 16 adapters; ncu_: per kernel, 16
      lora_models
      if [ $w = lora_decode ]; then
        for a in "" "$models/lora8b/a0" "$all"; do
          SABLE_BENCH_LORA="$a" "$bin/sable_gpu_decode_bench" "$models/llama8b" 64 128 64 1
        done | tee -a "$out/decode.txt"
      else
        ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
        SABLE_PROFILE=decode SABLE_BENCH_LORA="$all" "$ncu" --profile-from-start off --clock-control none ${NCU_ARGS:-} \
          --metrics gpu__time_duration.sum --csv "$bin/sable_gpu_decode_bench" "$models/llama8b" 64 128 4 0 \
          >"$out/$w.csv" 2>"$out/$w.err"
        python3 /work/main/scripts/ncu_summary.py "$out/$w.csv" | head -30 | tee "$out/$w.txt"
      fi ;;
    grammar_e2e)  # issue 20: JSON-schema decoding at concurrency 32 against unconstrained (bar: >= 95 %), 8B shape
      # 512 requests (16 waves of 32): constrained requests that close their JSON early leave slots
      # empty only in the last wave, which at 128 requests was a quarter of the run (NOTES v11);
      # full_batch_ratio leaves that drain out (the bar is at batch 32).
      make_model llama8b llama-3.1-8b llama3
      python3 /work/main/bench/grammar/e2e_throughput.py --sable "$bin/sable" --model-path "$models/llama8b" \
        --device cuda --concurrency 32 --requests ${GRAMMAR_E2E_N:-512} --max-new-tokens 256 \
        ${GRAMMAR_E2E_ARGS:-} 2>&1 | tail -8 | tee "$out/grammar_e2e.txt" ;;
    vl7b)  # issue 16: Qwen2.5-VL-7B shape: TTFT of one 1024x1024 image + 64 text tokens, 64 concurrent image requests
      python3 /work/main/bench/vision/vl_bench.py --sable-bin "$bin/sable" --device cuda \
        --work "$models/vl7b" --results "$out/vl_cuda.jsonl" 2>&1 | tee "$out/vl7b.txt" ;;
    scoring)  # issue 15: embedding throughput, BERT-base and Qwen2.5-0.5B shapes, batch 64
      SABLE_BENCH_MODEL_DIR=$models /work/main/bench/scoring/run.sh /work/main/$B cuda 64 ;;
  esac
done
