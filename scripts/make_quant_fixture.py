#!/usr/bin/env python3
"""The fixture that checks Sable's quantizer (core/gguf/ggml_quantize.cpp) against gguf-py's.

Writes tests/golden/quant/quantize.gguf: an F32 tensor `input` [64, 256] of fixed data (random
normal rows at several scales plus edge cases: zero and constant blocks, a negative extreme,
ties of +a/-a, exact .5 steps, tiny values) and, for each type gguf-py quantizes (Q8_0, Q4_0,
Q4_1, F16, BF16), a tensor of that name holding gguf.quants.quantize(input, type) as raw bytes.
gguf_test quantizes `input` in C++ and compares the bytes.
Usage: scripts/make_quant_fixture.py tests/golden/quant/quantize.gguf
"""
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q


def fixture_input() -> np.ndarray:
    rng = np.random.default_rng(20261205)
    x = rng.standard_normal((64, 256)).astype(np.float32)
    x[:8] *= np.float32(1e-3)
    x[8:16] *= np.float32(50.0)
    x[16, :32] = 0.0                                      # an all-zero block
    x[16, 32:64] = 0.75                                   # a constant block
    x[17, :32] = np.linspace(-3, 1, 32, dtype=np.float32)  # the extreme is negative
    x[17, 32:64] = np.where(np.arange(32) % 2 == 0, 2.0, -2.0).astype(np.float32)  # +a/-a ties
    x[18, :32] = np.arange(32, dtype=np.float32) / np.float32(2.0) - 8.0  # exact halves
    x[18, 32:64] = np.arange(32, dtype=np.float32) * np.float32(127.0 / 31.0)
    x[19, :32] = np.float32(1e-30) * np.arange(32, dtype=np.float32)  # tiny values
    x[20] = np.round(x[20] * 4) / 4                        # many exact quarter steps
    return x


def main(out: str) -> None:
    x = fixture_input()
    w = gguf.GGUFWriter(out, "sable-quant-fixture")
    w.add_tensor("input", x)
    for name, qt in (("q8_0", Q.Q8_0), ("q4_0", Q.Q4_0), ("q4_1", Q.Q4_1), ("f16", Q.F16),
                     ("bf16", Q.BF16)):
        data = gguf.quants.quantize(x, qt)
        w.add_tensor(name, data, raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main(sys.argv[1])
