#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks to build, serve and test Sable.
# Idempotent: packages already present are skipped, so `make` can call it every time.
set -euo pipefail

apt_packages=(
  build-essential cmake ninja-build pkg-config
  libyaml-cpp-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libboost-dev libcpp-httplib-dev libcli11-dev
  libpcre2-dev libutf8proc-dev libopenblas-dev
  libcurl4-openssl-dev libssl-dev
  libpng-dev libjpeg-dev libwebp-dev  # image input: PNG, JPEG (libjpeg-turbo on Debian/Ubuntu), WebP
  libgtest-dev libgmock-dev libbenchmark-dev
  clang
  python3 python3-pip
  tar xz-utils  # `sable bench grammar` unpacks JSONSchemaBench tarballs (.tar.xz) with tar
)
# clang builds the libFuzzer tests (cmake/SableFuzz.cmake) even in a gcc build; libFuzzer itself is
# in libclang-rt-dev (Debian 12+, Ubuntu 23.04+; older releases ship it inside clang's own packages),
# so that one is added only where the distribution has it.
optional_apt_packages=(libclang-rt-dev)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
optional_missing=()
for p in "${optional_apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || optional_missing+=("$p")
done
if ((${#missing[@]} + ${#optional_missing[@]})); then
  echo "install-deps: apt packages missing: ${missing[*]} ${optional_missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  for p in "${optional_missing[@]}"; do
    apt-cache show "$p" >/dev/null 2>&1 && missing+=("$p")
  done
  if ((${#missing[@]})); then
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
  fi
fi

pip_install() {
  python3 -m pip install -q "$@" || python3 -m pip install -q --break-system-packages "$@"
}

# Python packages for the end-to-end suite and tokenizer benchmark comparisons.
# module[:pip name]; jinja2 and PyYAML let the e2e suite render the reference chat template and
# read the OpenAI spec; jsonschema checks tool-call arguments and structured output against their
# schemas (rfc3339-validator and rfc3986-validator give its format checker date-time, time, uri); gguf (llama.cpp's gguf-py) writes the reference GGUF files of the GGUF tests;
# huggingface_hub checks that Sable and the reference library share one Hugging Face cache.
# nanobind and scikit-build-core build the Python package (python/: make test builds it when
# nanobind is importable; pip install ./python uses both); tqdm (run_batch progress bars) and
# nest_asyncio (Engine in a running loop) are what it and its tests use. pydantic is what the
# openai client's .parse() takes; numpy, pybase64, aiohttp, msgspec, IPython and tqdm are what the
# sglang frontend (sglang.lang, imported without the package's torch __init__) needs;
# tests/e2e/test_client_sglang.py runs it against sable serve.
py_packages=(pytest requests openai jinja2 yaml:pyyaml jsonschema gguf huggingface_hub nanobind
             scikit_build_core:scikit-build-core tqdm nest_asyncio pydantic numpy pybase64 aiohttp
             msgspec IPython:ipython rfc3339_validator:rfc3339-validator
             rfc3986_validator:rfc3986-validator)
py_missing=()
for entry in "${py_packages[@]}"; do
  python3 -c "import ${entry%%:*}" >/dev/null 2>&1 || py_missing+=("${entry#*:}")
done
if ((${#py_missing[@]})); then
  echo "install-deps: python packages missing: ${py_missing[*]}"
  pip_install "${py_missing[@]}"
fi
# The real sglang frontend and route table for the client conformance suites, pinned so that the
# route list tests/e2e/test_sglang_routes.py reads from it stays put. --no-deps: its own
# dependencies (torch, ...) are for its server, which is not used. find_spec locates the package
# without running its __init__ (which imports torch).
sglang_version=0.5.23
if ! python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('sglang') != '$sglang_version')" >/dev/null 2>&1; then
  echo "install-deps: sglang==$sglang_version (--no-deps) missing"
  pip_install --no-deps "sglang==$sglang_version"
fi

# The default model of `make serve` and the e2e test of a real model's answer (~93 MB, once).
"$(dirname "$0")/default-model.sh" >/dev/null
