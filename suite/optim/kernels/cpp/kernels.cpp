// The CPU optimizer step kernels (kernels.inc: Adam, SGD; adam8bit.inc: 8-bit Adam, with
// simd8.inc's AVX2 helpers), compiled twice on x86-64 (baseline SSE2, and AVX2+FMA as
// x86-64-v3) and picked at run time: the build is the same on every machine, so a
// cached build shared between machines (an NFS home) never runs an instruction the CPU
// lacks. Elsewhere (aarch64: NEON is the baseline) it is compiled once.
#include <cmath>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "step.h"

namespace optbench {

#define OPTBENCH_AVX2 0
namespace base {
#include "kernels.inc"
#include "simd8.inc"
#include "adam8bit.inc"
}  // namespace base
#undef OPTBENCH_AVX2

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v3")
#define OPTBENCH_AVX2 1
namespace v3 {
#include "kernels.inc"
#include "simd8.inc"
#include "adam8bit.inc"
}  // namespace v3
#undef OPTBENCH_AVX2
#pragma GCC pop_options

static bool has_v3() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                          __builtin_cpu_supports("f16c") && __builtin_cpu_supports("bmi2");
  return yes;
}
#define OPTBENCH_PICK(fn, ...) (has_v3() ? v3::fn(__VA_ARGS__) : base::fn(__VA_ARGS__))
#else
static bool has_v3() { return false; }
#define OPTBENCH_PICK(fn, ...) base::fn(__VA_ARGS__)
#endif

AdamFn adam_kernel(bool p_bf16, bool s_bf16, bool l2, AdamMode mode) {
  return OPTBENCH_PICK(adam_table, p_bf16, s_bf16, l2, mode);
}
SgdFn sgd_kernel(bool bf16, bool l2, SgdMode mode) {
  return OPTBENCH_PICK(sgd_table, bf16, l2, mode);
}
Adam8bitFn adam8bit_kernel(bool p_bf16, bool l2) {
  return OPTBENCH_PICK(adam8bit_table, p_bf16, l2);
}
EncodeFn encode_kernel(bool keep_positive) {
  return OPTBENCH_PICK(encode_table, keep_positive);
}
const char* kernel_isa() { return has_v3() ? "x86-64-v3 (AVX2, FMA)" : "baseline"; }

}  // namespace optbench
