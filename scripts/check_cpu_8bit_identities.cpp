// Exhaustive checks of the two float32 identities the AVX2 8-bit step relies on
// (suite/optim/kernels/cpp/adam8bit.inc), against the CPU's own division:
//   recip_of_recip(s, 1/s) == 1/(1/s) for every float s in [2^-76, 2^126), and 0, inf, NaN;
//   div_by(a, b, 1/b) == a/b for every float a in [1, 4) (every significand, both quotient
//   binades) and 2,000 divisors b: the bias corrections sqrt(1 - beta2^t) of common
//   beta2 for t = 1..200, and random ones; and near scale8_'s floor (div_by_floor), for
//   every a whose quotient is in the three binades above it, 60 scales from 2^-126 to 2^100.
// Build and run (x86-64 with AVX2 and FMA), from the repository root:
//   g++ -O2 -march=x86-64-v3 -ffp-contract=off -I suite/optim/kernels/cpp \
//       scripts/check_cpu_8bit_identities.cpp -o /tmp/check8 && /tmp/check8
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>

#include "step.h"

namespace optbench {
#define OPTBENCH_AVX2 1
#include "kernels.inc"
#include "simd8.inc"
#include "adam8bit.inc"
}  // namespace optbench

using namespace optbench;

static __m256 from_bits(uint32_t first) {
  const __m256i b = _mm256_add_epi32(_mm256_set1_epi32(int32_t(first)),
                                     _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  return _mm256_castsi256_ps(b);
}
static int differ(__m256 a, __m256 b) {  // lanes whose bits differ
  const __m256i eq = _mm256_cmpeq_epi32(_mm256_castps_si256(a), _mm256_castps_si256(b));
  return 8 - __builtin_popcount(_mm256_movemask_ps(_mm256_castsi256_ps(eq)));
}

int main() {
  const __m256 one = _mm256_set1_ps(1.0f);
  long bad = 0, checked = 0;
  auto rr = [&](uint32_t first) {
    const __m256 s = from_bits(first), r = _mm256_div_ps(one, s);
    bad += differ(recip_of_recip(s, r), _mm256_div_ps(one, r));
    checked += 8;
  };
  for (uint64_t u = 0x19800000u; u < 0x7E800000u; u += 8) rr(uint32_t(u));  // 2^-76 .. 2^126
  for (uint32_t u : {0x00000000u, 0x7F800000u, 0x7FC00000u, 0xFFC00000u}) {
    const __m256 s = _mm256_castsi256_ps(_mm256_set1_epi32(int32_t(u))), r = _mm256_div_ps(one, s);
    bad += differ(recip_of_recip(s, r), _mm256_div_ps(one, r));
    checked += 1;
  }
  std::printf("recip_of_recip: %ld of %ld differ\n", bad, checked);
  long bad_div = 0, pairs = 0;
  std::mt19937 gen(0);
  std::uniform_real_distribution<float> unit(1.0f, 2.0f);
  for (int k = 0; k < 2000; ++k) {
    float b;
    if (k < 600) {
      const double beta2[] = {0.999, 0.99, 0.95};
      b = float(std::sqrt(1.0 - std::pow(beta2[k / 200], k % 200 + 1)));
    } else {
      b = std::ldexp(unit(gen), int(gen() % 60) - 30);
    }
    const __m256 bv = _mm256_set1_ps(b), y = _mm256_set1_ps(1.0f / b);
    for (uint32_t u = 0x3F800000u; u < 0x40800000u; u += 8) {  // [1, 4)
      const __m256 a = from_bits(u);
      bad_div += differ(div_by(a, bv, y), _mm256_div_ps(a, bv));
    }
    pairs += 0x40800000u - 0x3F800000u;
  }
  std::printf("div_by: %ld of %ld (a, b) pairs differ\n", bad_div, pairs);
  // Near the floor of scale8_'s range: every a with a / b in the three binades from
  // div_by_floor(b) up (normal a only), for scales b from 2^-126 to 2^100.
  long bad_low = 0, low = 0;
  for (int k = 0; k < 60; ++k) {
    const float b = std::ldexp(unit(gen), -126 + (226 * k) / 59 - (k == 59));
    const float least = div_by_floor(b);
    if (!(least < 1.0f)) continue;
    const __m256 bv = _mm256_set1_ps(b), y = _mm256_set1_ps(1.0f / b);
    uint32_t lo, hi;
    const float a_lo = least * b, a_hi = least * b * 8.0f;
    std::memcpy(&lo, &a_lo, 4);
    std::memcpy(&hi, &a_hi, 4);
    if (lo < 0x00800000u) lo = 0x00800000u;
    for (uint32_t u = lo & ~7u; u < hi; u += 8) {
      const __m256 a = from_bits(u);
      const __m256 q = _mm256_div_ps(a, bv);
      const __m256 in_range = _mm256_cmp_ps(q, _mm256_set1_ps(least), _CMP_GE_OQ);
      const __m256i eq = _mm256_cmpeq_epi32(_mm256_castps_si256(div_by(a, bv, y)),
                                            _mm256_castps_si256(q));
      const int wrong = _mm256_movemask_ps(_mm256_andnot_ps(_mm256_castsi256_ps(eq), in_range));
      bad_low += __builtin_popcount(wrong);
      low += __builtin_popcount(_mm256_movemask_ps(in_range));
    }
  }
  std::printf("div_by near its floor: %ld of %ld (a, b) pairs differ\n", bad_low, low);
  return bad || bad_div || bad_low ? 1 : 0;
}
