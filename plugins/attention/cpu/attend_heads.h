// The CPU attention backend's vector kernels: one (token, KV head) unit's query heads against its
// K/V rows, each row read once for all of them (the plain per-head loop in cpu_attention.cpp read
// every row once per query head, one serial FMA chain and a scalar exp per position; at batch-1
// decode it was 11-15 % of a SmolLM2-135M step). Built per ISA in their own translation units
// (attend_heads_avx512.cpp, attend_heads_avx2.cpp) and picked at run time; the plain loop stays
// the fallback and the reference the tests hold these to.
#pragma once

#include <cstdint>

namespace sable_cpu_attention {

// Softmax(q·Kᵀ·scale)·V for `heads` query heads over n positions: position p's K row is
// k + off[p], its V row v + off[p] (D floats each); head h's query is q + h * q_head_stride and
// its output o + h * D. scores: heads * n floats of scratch. Each head's arithmetic is the same
// whichever heads it is run with, so the results do not depend on how units are sliced.
using AttendHeadsFn = void (*)(const float* k, const float* v, const int64_t* off, int64_t n,
                               const float* q, int64_t q_head_stride, int32_t heads, float scale,
                               int32_t D, float* scores, float* o);

void attend_heads_avx512(const float* k, const float* v, const int64_t* off, int64_t n,
                         const float* q, int64_t q_head_stride, int32_t heads, float scale,
                         int32_t D, float* scores, float* o);
void attend_heads_avx2(const float* k, const float* v, const int64_t* off, int64_t n,
                       const float* q, int64_t q_head_stride, int32_t heads, float scale,
                       int32_t D, float* scores, float* o);

// The kernel for this CPU, or the one SABLE_CPU_KERNELS asks for ("scalar": none, the plain
// loop; "avx2" / "avxvnni": the AVX2 one; anything else: the widest this CPU runs). Null means
// the plain loop. *name gets "avx512", "avx2" or "plain".
AttendHeadsFn pick_attend_heads(const char** name);

}  // namespace sable_cpu_attention
