// Python bindings of the CPU optimizer steps: lists of tensors in, one OpenMP region per
// call. The Python side (suite/optim/kernels/cpu.py) has checked devices, dtypes and
// layouts; here every tensor is walked as numel() values from data_ptr().
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <algorithm>
#include <vector>

#include "step.h"

namespace optbench {
namespace {

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

std::vector<Piece> pieces(const std::vector<at::Tensor>& params, int64_t* total) {
  std::vector<Piece> out;
  *total = 0;
  for (int64_t r = 0; r < int64_t(params.size()); ++r) {
    const int64_t n = params[r].numel();
    for (int64_t s = 0; s < n; s += CHUNK) out.push_back({r, s, std::min(CHUNK, n - s)});
    *total += n;
  }
  return out;
}

int threads_for(int64_t total) {
  const int64_t by_size = std::max<int64_t>(1, total / GRAIN);
  return int(std::min<int64_t>(at::get_num_threads(), by_size));
}

template <typename F>
void parallel(const std::vector<Piece>& work, int64_t total, const F& f) {
  const int nt = threads_for(total);
  const int64_t count = int64_t(work.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)
  for (int64_t i = 0; i < count; ++i) f(work[i]);
}

char* at_value(const at::Tensor& t, int64_t offset) {
  return static_cast<char*>(t.data_ptr()) + offset * t.element_size();
}

bool is_bf16(const at::Tensor& t) { return t.scalar_type() == at::kBFloat16; }

}  // namespace

void adam_step(const std::vector<at::Tensor>& p, const std::vector<at::Tensor>& g,
               const std::vector<at::Tensor>& m, const std::vector<at::Tensor>& v,
               const std::vector<at::Tensor>& vmax, double decay, double sign,
               double weight_decay, double w1, double beta2, double w2, double eps,
               double neg_step_size, double bias_correction2_sqrt, bool l2, bool amsgrad,
               bool sqrt_as_rsqrt) {
  if (p.empty()) return;
  const AdamScalars s{float(decay), float(sign), float(weight_decay), float(w1),
                      float(beta2), float(w2),   float(eps),          float(neg_step_size),
                      float(bias_correction2_sqrt)};
  const AdamMode mode = amsgrad ? AMSGRAD : sqrt_as_rsqrt ? RSQRT : PLAIN;
  const AdamFn fn = adam_kernel(is_bf16(p[0]), is_bf16(m[0]), l2, mode);
  int64_t total;
  const auto work = pieces(p, &total);
  parallel(work, total, [&](const Piece& w) {
    fn(s, at_value(p[w.row], w.start), at_value(g[w.row], w.start),
       at_value(m[w.row], w.start), at_value(v[w.row], w.start),
       amsgrad ? at_value(vmax[w.row], w.start) : nullptr, w.n);
  });
}

void sgd_step(const std::vector<at::Tensor>& p, const std::vector<at::Tensor>& g,
              const std::vector<at::Tensor>& bufs, double sign, double weight_decay,
              double momentum, double w_g, double neg_lr, bool l2, bool first, bool nesterov) {
  if (p.empty()) return;
  const SgdScalars s{float(sign), float(weight_decay), float(momentum), float(w_g),
                     float(neg_lr)};
  SgdMode mode = NO_MOMENTUM;
  if (!bufs.empty()) mode = nesterov ? (first ? NESTEROV_FIRST : NESTEROV) : (first ? FIRST : MOMENTUM);
  const SgdFn fn = sgd_kernel(is_bf16(p[0]), l2, mode);
  int64_t total;
  const auto work = pieces(p, &total);
  parallel(work, total, [&](const Piece& w) {
    fn(s, at_value(p[w.row], w.start), at_value(g[w.row], w.start),
       bufs.empty() ? nullptr : at_value(bufs[w.row], w.start), w.n);
  });
}

// ptrs of a lookup: (qmap float32 [256], base int32 [65536], mids float32 [k, 65536]).
Lookup lookup(const at::Tensor& qmap, const at::Tensor& base, const at::Tensor& mids) {
  return Lookup{qmap.data_ptr<float>(), base.data_ptr<int32_t>(), mids.data_ptr<float>(),
                int(mids.size(0))};
}

void adam8bit_step(const std::vector<at::Tensor>& p, const std::vector<at::Tensor>& g,
                   const std::vector<at::Tensor>& m_codes,
                   const std::vector<at::Tensor>& v_codes,
                   const std::vector<at::Tensor>& m_absmax,
                   const std::vector<at::Tensor>& v_absmax, const at::Tensor& m_qmap,
                   const at::Tensor& m_base, const at::Tensor& m_mids, const at::Tensor& v_qmap,
                   const at::Tensor& v_base, const at::Tensor& v_mids, double decay, double sign,
                   double weight_decay, double w1, double beta2, double w2, double eps,
                   double neg_step_size, double bias_correction2_sqrt, bool l2) {
  if (p.empty()) return;
  const AdamScalars s{float(decay), float(sign), float(weight_decay), float(w1),
                      float(beta2), float(w2),   float(eps),          float(neg_step_size),
                      float(bias_correction2_sqrt)};
  const Lookup mlk = lookup(m_qmap, m_base, m_mids), vlk = lookup(v_qmap, v_base, v_mids);
  const Adam8bitFn fn = adam8bit_kernel(is_bf16(p[0]), l2);
  int64_t total;
  const auto work = pieces(p, &total);
  parallel(work, total, [&](const Piece& w) {
    const int64_t blk = w.start / 256;
    fn(s, mlk, vlk, at_value(p[w.row], w.start), at_value(g[w.row], w.start),
       m_codes[w.row].data_ptr<uint8_t>() + w.start, v_codes[w.row].data_ptr<uint8_t>() + w.start,
       m_absmax[w.row].data_ptr<float>() + blk, v_absmax[w.row].data_ptr<float>() + blk, w.n);
  });
}

}  // namespace optbench

PYBIND11_MODULE(TORCH_EXTENSION_NAME, mod) {
  mod.def("adam_step", &optbench::adam_step);
  mod.def("sgd_step", &optbench::sgd_step);
  mod.def("adam8bit_step", &optbench::adam8bit_step);
  mod.def("isa", &optbench::kernel_isa);
  mod.def("threads_for", &optbench::threads_for);
}
