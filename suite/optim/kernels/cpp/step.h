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

// The encoder table of one 8-bit map (suite/optim/kernels/_cpu_lookup.py): bucket(y)
// cuts the floats into 2 x 4096 ranges of equal top 16 bits (sign; exponent and 7
// mantissa bits, of the binades from 2^-31 up), except the first of each sign (everything
// below 2^-31) and the last (everything from 2 - 2^-7 up). entry[b] packs base (bits
// 0-7: the map's midpoints below the bucket) and thr (bits 16-31: the key of the one
// midpoint inside the bucket, 0xFFFF if none), key(y) being the low 16 bits of y, negated
// (xor 0xFFFF) for y < 0 so that key order is value order within a bucket. Then for every
// y but NaN: code(y) = base + [key(y) > thr].
constexpr uint32_t BUCKET_T0 = 96u << 7;  // exponent 96 (2^-31), mantissa 0, in y's bits >> 16
constexpr int32_t BUCKET_TOP = 4095;
inline uint32_t bucket(uint32_t bits) {
  const int32_t t = int32_t((bits >> 16) & 0x7FFFu) - int32_t(BUCKET_T0);
  const uint32_t c = uint32_t(t < 0 ? 0 : t > BUCKET_TOP ? BUCKET_TOP : t);
  return ((bits >> 19) & 0x1000u) | c;
}
struct Lookup {
  const float* qmap;     // 256 map values, to dequantize
  const int32_t* entry;  // 8192 entries
  int nan_code;          // the pure path's code of a NaN
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
// The 8-bit step's encoder alone (for the tests): codes of n floats.
using EncodeFn = void (*)(const float* y, uint8_t* codes, int64_t n, const Lookup& lookup);
EncodeFn encode_kernel(bool keep_positive);
const char* kernel_isa();

}  // namespace optbench
