// Shared by the CPU optimizer steps (see suite/optim/kernels/cpu.py): value types, the
// per-step scalars, and the type-erased kernel signatures bind.cpp calls.
#pragma once

#include <cstdint>
#include <cstring>

namespace optbench {

// bfloat16 is carried as its 16 bits; float32 as float.
using bf16 = uint16_t;

inline float load(float x) { return x; }
inline float load(bf16 x) {
  uint32_t u = uint32_t(x) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// To nearest even, NaN to the quiet NaN 0x7FC0: c10::BFloat16's rounding.
inline void store(float* dst, float x) { *dst = x; }
inline void store(bf16* dst, float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  *dst = x != x ? bf16(0x7FC0) : bf16((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}
// The value a store of x keeps, read back as float (x itself for float32).
template <typename T>
inline float rounded(float x) {
  T t;
  store(&t, x);
  return load(t);
}

// Float32 scalars of one Adam step, computed on the host (in double, as the pure path).
struct AdamScalars {
  float decay;          // 1 - lr * weight_decay when decoupled, else 1 (p * 1 = p exactly)
  float sign;           // -1 when maximizing (g * -1 = -g exactly), else 1
  float weight_decay;   // lambda of the L2 form g + lambda p
  float w1;             // 1 - beta1: torch's lerp weight
  float beta2;
  float w2;             // 1 - beta2
  float eps;
  float neg_step_size;  // -lr / (1 - beta1^t)
  float bias_correction2_sqrt;  // sqrt(1 - beta2^t)
};

struct SgdScalars {
  float sign, weight_decay, momentum, w_g /* 1 - dampening */, neg_lr;
};

// The encoder tables of one 8-bit map (suite/optim/quant.py _Lookup): code(y) =
// base[h] + sum_k [y > mids[k * 65536 + h]], h the top 16 bits of y.
struct Lookup {
  const float* qmap;  // 256 map values, to dequantize
  const int32_t* base;
  const float* mids;  // k tables of 65536
  int k;
};

enum AdamMode { PLAIN = 0, AMSGRAD = 1, RSQRT = 2 };  // RSQRT: sqrt(v) as 1 / rsqrt(v)
enum SgdMode { NO_MOMENTUM = 0, FIRST = 1, MOMENTUM = 2, NESTEROV_FIRST = 3, NESTEROV = 4 };

// One kernel call updates n consecutive values; pointers are at the first of them.
using AdamFn = void (*)(const AdamScalars&, void* p, const void* g, void* m, void* v,
                        void* vmax, int64_t n);
using SgdFn = void (*)(const SgdScalars&, void* p, const void* g, void* b, int64_t n);
// n values from a block boundary; absmax pointers at that block.
using Adam8bitFn = void (*)(const AdamScalars&, const Lookup& m_lookup, const Lookup& v_lookup,
                            void* p, const void* g, uint8_t* m_codes, uint8_t* v_codes,
                            float* m_absmax, float* v_absmax, int64_t n);

// p_bf16 / s_bf16: parameter (and gradient) / state in bfloat16, else float32.
AdamFn adam_kernel(bool p_bf16, bool s_bf16, bool l2, AdamMode mode);
SgdFn sgd_kernel(bool bf16, bool l2, SgdMode mode);
Adam8bitFn adam8bit_kernel(bool p_bf16, bool l2);
const char* kernel_isa();

}  // namespace optbench
