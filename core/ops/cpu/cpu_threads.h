// How many threads the CPU ops use (--cpu-threads, default the machine's physical cores), and the
// rules that keep every parallel part of a forward at that count.
//
// Every CPU op splits its rows over the thread pool (thread_pool.h) with threads() threads, when
// the work is worth it; OpenBLAS is set to one thread and called per slice from inside the pool,
// so it never starts threads of its own. Plugins run their own loops on the same pool through the
// ops table's parallel_for (ABI 1.6; the CPU attention backend does); a plugin's OpenMP regions
// use a team of the same count once the forward thread has adopted it. The
// ops of a forward run one after another, so at most threads() threads compute at a time. Thread-safety: threads() may be read
// anywhere; set_threads is for startup, before forwards run.
#pragma once

#include <string>

namespace sable::ops::cpu {

// Physical cores this process may run on: distinct (package, core) pairs among the CPUs of its
// affinity mask, from /sys/devices/system/cpu; the mask's CPU count when topology is unreadable.
int physical_cores();

// n > 0: that many threads; n <= 0: physical_cores(). Also sets OpenBLAS to one thread.
void set_threads(int n);
int threads();
// The BLAS the float32 GEMMs call, for logs: "OpenBLAS <core it chose for this CPU>" (e.g.
// "OpenBLAS Haswell"), or "a reference BLAS" when the library is not OpenBLAS.
std::string blas_name();
// When OpenBLAS fell back to its Prescott (SSE3) kernels on a CPU with AVX2 - OpenBLAS releases
// before 0.3.25 do so on Intel models they do not know (e.g. Debian 12's 0.3.21 on 5th-generation
// Xeons), leaving float32 GEMMs several times slower - the OPENBLAS_CORETYPE that fixes it
// ("SkylakeX" with AVX-512, else "Haswell"); empty otherwise. The variable must be in the
// environment before the process starts (OpenBLAS reads it when it loads).
std::string blas_core_override();
// Whether decode-sized GEMMs over quantized weights quantize the activations to int8 blocks and
// use integer dot products (llama.cpp's scheme: fastest, logits within a few percent), or keep
// them fp32 against weight rows unpacked on the fly (the float32 path's results, more compute).
// Off by default (--cpu-int8-activations turns it on). The LM head is always fp32 (qblocks.h).
void set_int8_activations(bool on);
bool int8_activations();

// Makes the OpenMP regions the calling thread opens without a num_threads clause (those of
// third-party plugins) use threads() as well. The runner calls it before a forward.
void adopt_threads();

}  // namespace sable::ops::cpu
