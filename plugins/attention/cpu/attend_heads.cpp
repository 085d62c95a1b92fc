// Picks the attention kernel of attend_heads.h for this CPU (built for the baseline instruction
// set: it only asks the CPU what it runs).
#include "attend_heads.h"

#include <cstdlib>
#include <string>

namespace sable_cpu_attention {

AttendHeadsFn pick_attend_heads(const char** name) {
  AttendHeadsFn fn = nullptr;
  const char* what = "plain";
#if defined(SABLE_ATTEND_HEADS_X86)
  const char* env = std::getenv("SABLE_CPU_KERNELS");
  const std::string want = env != nullptr ? env : "";
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f");
  if (want == "scalar") {
  } else if (avx512 && want != "avx2" && want != "avxvnni") {
    fn = &attend_heads_avx512, what = "avx512";
  } else if (avx2) {
    fn = &attend_heads_avx2, what = "avx2";
  }
#endif
  if (name != nullptr) *name = what;
  return fn;
}

}  // namespace sable_cpu_attention
