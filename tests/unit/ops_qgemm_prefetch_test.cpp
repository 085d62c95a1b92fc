// The x86 kernels that stream weights keep their software prefetches in the compiled code
// (core/ops/cpu/qkernels_x86.inc, SABLE_QK_PREFETCH). A prefetch changes no result, so no test of
// values can see one go missing; yet GCC deleted every prefetch of the x16 GEMV (the batch-1 body
// GEMMs of Q8_0 / Q4_0 / Q4_1) from 44f6e94 on - the helper holding them was not inlined there and,
// having no visible effect, was marked const and its call removed - and batch-1 decode lost
// ~20-35 % (bench/NOTES.md, issue 21, thirteenth session). So this test reads the kernels' machine
// code: each function's extent comes from this executable's ELF symbol table, and its bytes are
// searched for prefetcht0 (0F 18 /1) and prefetcht1 (0F 18 /2). Skipped where the kernels are not
// compiled in (not x86-64), the CPU cannot run the table, or the symbol table was stripped.
#include <gtest/gtest.h>

#if defined(__x86_64__) && defined(__linux__)
#include <dlfcn.h>
#include <elf.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <span>
#include <string>
#include <vector>

#include "core/ops/cpu/qkernels.h"

namespace sable::ops {
namespace {

// The machine code of the function at fn, from the ELF symbol table of the object holding it
// (this executable, or a shared library); empty when the object has no symbol table for it.
std::span<const uint8_t> function_code(const void* fn) {
  Dl_info info{};
  if (dladdr(fn, &info) == 0 || info.dli_fname == nullptr) return {};
  std::ifstream in(info.dli_fname, std::ios::binary);
  if (!in) in.open("/proc/self/exe", std::ios::binary);
  const std::vector<char> file{std::istreambuf_iterator<char>(in), {}};
  if (file.size() < sizeof(Elf64_Ehdr)) return {};
  Elf64_Ehdr eh;
  std::memcpy(&eh, file.data(), sizeof eh);
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_shoff + uint64_t{eh.e_shnum} * sizeof(Elf64_Shdr) > file.size())
    return {};
  const auto addr = reinterpret_cast<uintptr_t>(fn);
  const uintptr_t offset = addr - reinterpret_cast<uintptr_t>(info.dli_fbase);
  for (int s = 0; s < eh.e_shnum; ++s) {
    Elf64_Shdr sh;
    std::memcpy(&sh, file.data() + eh.e_shoff + s * sizeof(Elf64_Shdr), sizeof sh);
    if (sh.sh_type != SHT_SYMTAB || sh.sh_offset + sh.sh_size > file.size()) continue;
    for (uint64_t o = 0; o + sizeof(Elf64_Sym) <= sh.sh_size; o += sizeof(Elf64_Sym)) {
      Elf64_Sym sym;
      std::memcpy(&sym, file.data() + sh.sh_offset + o, sizeof sym);
      // Position-independent objects hold offsets from their load base, others addresses.
      if (ELF64_ST_TYPE(sym.st_info) == STT_FUNC && sym.st_size > 0 &&
          (sym.st_value == offset || sym.st_value == addr))
        return {static_cast<const uint8_t*>(fn), static_cast<size_t>(sym.st_size)};
    }
  }
  return {};
}

struct Prefetches {
  int t0 = 0, t1 = 0;
};

// prefetcht0 / prefetcht1 with a memory operand: 0F 18, then a ModRM byte whose reg field is 1
// or 2 (mod != 3). A byte pair 0F 18 inside another instruction's displacement could be counted
// too; the test asks for at least one of each, which code without prefetches does not reach by
// chance (checked on the kernels before the fix: none).
Prefetches count_prefetches(std::span<const uint8_t> code) {
  Prefetches p;
  for (size_t i = 0; i + 2 < code.size(); ++i) {
    if (code[i] != 0x0F || code[i + 1] != 0x18 || (code[i + 2] >> 6) == 3) continue;
    const int reg = (code[i + 2] >> 3) & 7;
    p.t0 += reg == 1;
    p.t1 += reg == 2;
  }
  return p;
}

TEST(OpsQgemmPrefetch, X16KernelsKeepTheirPrefetches) {
  // The AVX-512 VNNI table's x16 GEMV and head: the AMX table reaches the same GEMV below its
  // tile sizes (batch-1 decode) and shares the head.
  bool have = false;
  for (const cpu::QKernels* t : cpu::usable_kernels()) have |= t == &cpu::avx512vnni_kernels();
  if (!have) GTEST_SKIP() << "this CPU does not run the AVX-512 VNNI table";
  const cpu::QKernels& k = cpu::avx512vnni_kernels();
  const struct {
    const char* name;
    const void* fn;
  } kernels[] = {
      {"q8_0_x16", reinterpret_cast<const void*>(k.q8_0_x16)},
      {"q4_0_x16", reinterpret_cast<const void*>(k.q4_0_x16)},
      {"q4_1_x16", reinterpret_cast<const void*>(k.q4_1_x16)},
      {"q8_0_x16_head", reinterpret_cast<const void*>(k.q8_0_x16_head)},
      {"q4_0_x16_head", reinterpret_cast<const void*>(k.q4_0_x16_head)},
      {"q4_1_x16_head", reinterpret_cast<const void*>(k.q4_1_x16_head)},
  };
  for (const auto& kern : kernels) {
    ASSERT_NE(kern.fn, nullptr) << kern.name;
    const std::span<const uint8_t> code = function_code(kern.fn);
    if (code.empty()) GTEST_SKIP() << "no symbol table for " << kern.name << " (stripped?)";
    const Prefetches p = count_prefetches(code);
    EXPECT_GT(p.t0, 0) << kern.name << ": no prefetcht0 in " << code.size() << " bytes of code";
    EXPECT_GT(p.t1, 0) << kern.name << ": no prefetcht1 in " << code.size() << " bytes of code";
  }
}

}  // namespace
}  // namespace sable::ops

#else
TEST(OpsQgemmPrefetch, X16KernelsKeepTheirPrefetches) {
  GTEST_SKIP() << "x86-64 Linux only";
}
#endif
