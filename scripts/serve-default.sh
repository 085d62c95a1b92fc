#!/usr/bin/env bash
# `make serve`: serve the default model (the tiny qwen2_tok golden checkpoint, which has a real
# tokenizer) on the CPU at 127.0.0.1:30000. Usage: scripts/serve-default.sh <build_dir> [sable serve flags]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-build}"
shift || true
exec "$build_dir/bin/sable" serve --model-path tests/golden/models/qwen2_tok --device cpu "$@"
