#include "attention/kernels/blockwise.h"

#include <algorithm>
#include <limits>

#include "framework/core/error.h"

namespace lminf {

at::Tensor blockwise_causal_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      int64_t q_offset, std::optional<int64_t> window, double scale,
                                      const BlockwiseOptions& opts, const TileReport& report) {
  const int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), K = k.size(2), Dv = v.size(3);
  if (H % Hkv != 0) fail("attention: ", H, " query heads are not a multiple of ", Hkv, " key/value heads");
  if (q_offset + Tq > K) fail("attention: queries reach cache index ", q_offset + Tq, " but only ", K, " keys");
  if (opts.block_q <= 0 || opts.block_k <= 0) fail("attention: block sizes must be > 0");
  const int64_t g = H / Hkv;
  const bool report_tiles = report.observers && report.observers->wants(Site::kAttnLogits, report.layer);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const auto dtype = q.scalar_type();
  // Softmax statistics in float32 (float64 when the inputs are float64: the reference path).
  const auto acc_t = dtype == at::kDouble ? at::kDouble : at::kFloat;
  auto f32 = q.options().dtype(acc_t);
  const auto idx = q.options().dtype(at::kLong);  // index tensors beside the queries (CPU or CUDA)

  at::Tensor out = at::empty({B, H, Tq, Dv}, q.options());
  for (int64_t qs = 0; qs < Tq; qs += opts.block_q) {
    const int64_t bq = std::min(opts.block_q, Tq - qs);
    // [B, H, bq, D] -> [B, Hkv, g*bq, D]: rows (group member, query) of one kv head.
    at::Tensor qb = q.narrow(2, qs, bq).reshape({B, Hkv, g * bq, D});
    const int64_t i0 = q_offset + qs, i1 = i0 + bq;  // cache indices of this tile's queries
    const int64_t lo = window ? std::max<int64_t>(0, i0 - *window + 1) : 0;
    const int64_t hi = i1;

    at::Tensor m = at::full({B, Hkv, g * bq, 1}, neg_inf, f32);
    at::Tensor l = at::zeros({B, Hkv, g * bq, 1}, f32);
    at::Tensor acc = at::zeros({B, Hkv, g * bq, Dv}, f32);
    for (int64_t ks = lo; ks < hi; ks += opts.block_k) {
      const int64_t bk = std::min(opts.block_k, hi - ks);
      at::Tensor kb = k.narrow(2, ks, bk);
      at::Tensor vb = v.narrow(2, ks, bk);
      at::Tensor s = at::matmul(qb, kb.transpose(-1, -2)).to(acc_t).mul_(scale);  // [B,Hkv,g*bq,bk]
      const bool causal_cut = ks + bk - 1 > i0;
      const bool window_cut = window && ks <= i1 - 1 - *window;
      if (causal_cut || window_cut) {
        at::Tensor qi = at::arange(i0, i1, idx).unsqueeze(1);  // [bq, 1]
        at::Tensor kj = at::arange(ks, ks + bk, idx).unsqueeze(0);  // [1, bk]
        at::Tensor hidden = kj > qi;
        if (window) hidden = at::logical_or(hidden, (qi - kj) >= *window);
        s.view({B, Hkv, g, bq, bk}).masked_fill_(hidden, neg_inf);
      }
      if (report_tiles) {
        Observation o;
        o.site = Site::kAttnLogits;
        o.layer = report.layer;
        o.data = s.view({B, H, bq, bk});
        o.q_start = report.abs_offset + i0;
        o.k_start = report.abs_offset + ks;
        o.head_offset = report.head_offset;
        report.observers->emit(o);
      }
      at::Tensor m_new = at::maximum(m, std::get<0>(s.max(-1, /*keepdim=*/true)));
      // Rows with no visible key yet keep m = -inf; shift them by 0 so exp() gives 0, not NaN.
      at::Tensor m_safe = at::where(at::isinf(m_new), at::zeros_like(m_new), m_new);
      at::Tensor p = at::exp(s - m_safe);
      at::Tensor corr = at::exp(m - m_safe);
      l = l * corr + p.sum(-1, /*keepdim=*/true);
      at::Tensor pv = at::matmul(p.to(dtype), vb);
      acc = acc * corr + pv.to(acc_t);
      m = m_new;
    }
    at::Tensor ob = (acc / l).to(dtype).view({B, H, bq, Dv});
    out.narrow(2, qs, bq).copy_(ob);
  }
  return out;
}

}  // namespace lminf
