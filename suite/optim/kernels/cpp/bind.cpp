// Python bindings of the CPU optimizer steps: tensors come in as addresses (Python ints)
// and value counts, so this file needs pybind11 alone, not torch's headers (a cold build
// in seconds rather than a minute), and one OpenMP region runs per call. The Python side
// (suite/optim/kernels/cpu.py) has checked devices, dtypes and layouts and keeps the
// tensors alive; every tensor is walked as numel values from its address.
#include <omp.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "step.h"

namespace optbench {
namespace {

using Ptrs = std::vector<uintptr_t>;
using Sizes = std::vector<int64_t>;

// Work is cut into pieces of CHUNK values (a multiple of the 256-value quantization
// block), handed to threads one at a time (dynamic schedule: a thread that shares its
// core with another process takes fewer pieces instead of holding the others up).
constexpr int64_t CHUNK = 1 << 14;
// At most one thread per GRAIN values: a small step stays on the calling thread, where
// waking a second one would cost more than it saves (and, on a busy machine, a
// scheduler tick).
constexpr int64_t GRAIN = 1 << 17;

struct Piece {
  int64_t row, start, n;
};

std::vector<Piece> pieces(const Sizes& numels, int64_t* total) {
  std::vector<Piece> out;
  *total = 0;
  for (int64_t r = 0; r < int64_t(numels.size()); ++r) {
    for (int64_t s = 0; s < numels[r]; s += CHUNK)
      out.push_back({r, s, std::min(CHUNK, numels[r] - s)});
    *total += numels[r];
  }
  return out;
}

// torch.set_num_threads sets OpenMP's thread count too (omp_set_num_threads).
int threads_for(int64_t total) {
  const int64_t by_size = std::max<int64_t>(1, total / GRAIN);
  return int(std::min<int64_t>(omp_get_max_threads(), by_size));
}

template <typename F>
void parallel(const Sizes& numels, const F& f) {
  int64_t total;
  const auto work = pieces(numels, &total);
  const int nt = threads_for(total);
  const int64_t count = int64_t(work.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)
  for (int64_t i = 0; i < count; ++i) f(work[i]);
}

// The address of value `offset` of a tensor at `base` with `size`-byte values.
void* at(uintptr_t base, int64_t offset, int size) {
  return base ? reinterpret_cast<void*>(base + uintptr_t(offset * size)) : nullptr;
}

AdamScalars adam_scalars(const std::vector<double>& s) {
  return AdamScalars{float(s.at(0)), float(s.at(1)), float(s.at(2)), float(s.at(3)),
                     float(s.at(4)), float(s.at(5)), float(s.at(6)), float(s.at(7)),
                     float(s.at(8))};
}

}  // namespace

// scalars: decay, sign, weight_decay, w1, beta2, w2, eps, neg_step_size,
// bias_correction2_sqrt (step.h AdamScalars); vmax empty unless amsgrad.
void adam_step(const Ptrs& p, const Ptrs& g, const Ptrs& m, const Ptrs& v, const Ptrs& vmax,
               const Sizes& numels, bool p_bf16, bool s_bf16,
               const std::vector<double>& scalars, bool l2, bool amsgrad, bool sqrt_as_rsqrt) {
  const AdamScalars s = adam_scalars(scalars);
  const AdamFn fn =
      adam_kernel(p_bf16, s_bf16, l2, amsgrad ? AMSGRAD : sqrt_as_rsqrt ? RSQRT : PLAIN);
  const int ps = p_bf16 ? 2 : 4, ss = s_bf16 ? 2 : 4;
  parallel(numels, [&](const Piece& w) {
    fn(s, at(p[w.row], w.start, ps), at(g[w.row], w.start, ps), at(m[w.row], w.start, ss),
       at(v[w.row], w.start, ss), amsgrad ? at(vmax[w.row], w.start, ss) : nullptr, w.n);
  });
}

// scalars: sign, weight_decay, momentum, w_g, neg_lr (step.h SgdScalars); bufs empty
// without momentum.
void sgd_step(const Ptrs& p, const Ptrs& g, const Ptrs& bufs, const Sizes& numels, bool bf16,
              const std::vector<double>& sc, bool l2, bool first, bool nesterov) {
  const SgdScalars s{float(sc.at(0)), float(sc.at(1)), float(sc.at(2)), float(sc.at(3)),
                     float(sc.at(4))};
  SgdMode mode = NO_MOMENTUM;
  if (!bufs.empty())
    mode = nesterov ? (first ? NESTEROV_FIRST : NESTEROV) : (first ? FIRST : MOMENTUM);
  const SgdFn fn = sgd_kernel(bf16, l2, mode);
  const int size = bf16 ? 2 : 4;
  parallel(numels, [&](const Piece& w) {
    fn(s, at(p[w.row], w.start, size), at(g[w.row], w.start, size),
       bufs.empty() ? nullptr : at(bufs[w.row], w.start, size), w.n);
  });
}

// A lookup as addresses: qmap float32 [256], entry int32 [8192].
Lookup lookup(const Ptrs& t, int nan_code) {
  return Lookup{reinterpret_cast<const float*>(t.at(0)),
                reinterpret_cast<const int32_t*>(t.at(1)), nan_code};
}

void adam8bit_step(const Ptrs& p, const Ptrs& g, const Ptrs& m_codes, const Ptrs& v_codes,
                   const Ptrs& m_absmax, const Ptrs& v_absmax, const Sizes& numels,
                   bool p_bf16, const Ptrs& m_tables, int m_nan, const Ptrs& v_tables, int v_nan,
                   const std::vector<double>& scalars, bool l2) {
  const AdamScalars s = adam_scalars(scalars);
  const Lookup mlk = lookup(m_tables, m_nan), vlk = lookup(v_tables, v_nan);
  const Adam8bitFn fn = adam8bit_kernel(p_bf16, l2);
  const int ps = p_bf16 ? 2 : 4;
  parallel(numels, [&](const Piece& w) {
    const int64_t blk = w.start / 256;
    fn(s, mlk, vlk, at(p[w.row], w.start, ps), at(g[w.row], w.start, ps),
       static_cast<uint8_t*>(at(m_codes[w.row], w.start, 1)),
       static_cast<uint8_t*>(at(v_codes[w.row], w.start, 1)),
       static_cast<float*>(at(m_absmax[w.row], blk, 4)),
       static_cast<float*>(at(v_absmax[w.row], blk, 4)), w.n);
  });
}

// The codes of n float32 values at y into codes, with one map's tables (lookup above).
void encode(uintptr_t y, uintptr_t codes, int64_t n, const Ptrs& tables, int nan_code,
            bool keep_positive) {
  encode_kernel(keep_positive)(reinterpret_cast<const float*>(y), reinterpret_cast<uint8_t*>(codes),
                               n, lookup(tables, nan_code));
}

}  // namespace optbench

PYBIND11_MODULE(TORCH_EXTENSION_NAME, mod) {
  mod.def("adam_step", &optbench::adam_step);
  mod.def("sgd_step", &optbench::sgd_step);
  mod.def("adam8bit_step", &optbench::adam8bit_step);
  mod.def("encode", &optbench::encode);
  mod.def("isa", &optbench::kernel_isa);
  mod.def("threads_for", &optbench::threads_for);
}
