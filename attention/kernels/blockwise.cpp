#include "attention/kernels/blockwise.h"

#include <algorithm>
#include <limits>

#include "framework/core/error.h"
#include "framework/core/linear.h"

namespace lminf {
namespace {

// The shapes of one call and the scaled, masked logits of one (query tile, key tile).
struct BlockwiseCall {
  const at::Tensor &q, &k, &v;
  int64_t q_offset;
  std::optional<int64_t> window;
  double scale;
  int64_t B, H, Tq, D, Hkv, K, Dv, g;
  at::ScalarType dtype, acc_t;
  at::TensorOptions idx;  // index tensors beside the queries (CPU or CUDA)

  BlockwiseCall(const at::Tensor& q_, const at::Tensor& k_, const at::Tensor& v_, int64_t off,
                std::optional<int64_t> w, double sc)
      : q(q_), k(k_), v(v_), q_offset(off), window(w), scale(sc) {
    B = q.size(0), H = q.size(1), Tq = q.size(2), D = q.size(3);
    Hkv = k.size(1), K = k.size(2), Dv = v.size(3);
    if (H % Hkv != 0) fail("attention: ", H, " query heads are not a multiple of ", Hkv, " key/value heads");
    if (q_offset + Tq > K) fail("attention: queries reach cache index ", q_offset + Tq, " but only ", K, " keys");
    g = H / Hkv;
    dtype = q.scalar_type();
    // Softmax statistics in float32 (float64 when the inputs are float64: the reference path).
    acc_t = dtype == at::kDouble ? at::kDouble : at::kFloat;
    idx = q.options().dtype(at::kLong);
  }
  // The first key a query tile at cache indices [i0, ...) can see.
  int64_t first_key(int64_t i0) const { return window ? std::max<int64_t>(0, i0 - *window + 1) : 0; }

  // qb: [B, Hkv, g*bq, D] rows (group member, query) at cache indices [i0, i1); keys [ks, ks + bk).
  // Returns [B, Hkv, g*bq, bk] logits in acc_t, hidden entries -inf.
  at::Tensor logits(const at::Tensor& qb, int64_t i0, int64_t i1, int64_t ks, int64_t bk) const {
    static constexpr float neg_inf = -std::numeric_limits<float>::infinity();
    at::Tensor s = lminf::matmul(qb, k.narrow(2, ks, bk).transpose(-1, -2)).to(acc_t).mul_(scale);
    const bool causal_cut = ks + bk - 1 > i0;
    const bool window_cut = window && ks <= i1 - 1 - *window;
    if (causal_cut || window_cut) {
      at::Tensor qi = at::arange(i0, i1, idx).unsqueeze(1);       // [bq, 1]
      at::Tensor kj = at::arange(ks, ks + bk, idx).unsqueeze(0);  // [1, bk]
      at::Tensor hidden = kj > qi;
      if (window) hidden = at::logical_or(hidden, (qi - kj) >= *window);
      s.view({B, Hkv, g, i1 - i0, bk}).masked_fill_(hidden, neg_inf);
    }
    return s;
  }
};

void report_tile(const TileReport& report, const at::Tensor& s, int64_t B, int64_t H, int64_t bq, int64_t i0,
                 int64_t ks, int64_t bk) {
  Observation o;
  o.site = Site::kAttnLogits;
  o.layer = report.layer;
  o.data = s.view({B, H, bq, bk});
  o.q_start = report.abs_offset + i0;
  o.k_start = report.abs_offset + ks;
  o.head_offset = report.head_offset;
  report.observers->emit(o);
}

// Adds to mass ([B, Hkv, K]) the probabilities exp(s - lse) of the query tile's rows at cache index
// >= first_row, summed over the rows and the group, for every key tile of the tile's range.
void add_tile_mass(const BlockwiseCall& c, const at::Tensor& qb, int64_t i0, int64_t i1, const at::Tensor& lse,
                   int64_t first_row, int64_t block_k, at::Tensor& mass) {
  const int64_t bq = i1 - i0;
  // Rows before first_row weigh 0: their log-sum-exp is raised to +inf.
  at::Tensor rows = at::arange(i0, i1, c.idx) < first_row;  // [bq]
  at::Tensor lse_used = lse.view({c.B, c.Hkv, c.g, bq, 1}).masked_fill(rows.view({bq, 1}),
                                                                        std::numeric_limits<double>::infinity());
  for (int64_t ks = c.first_key(i0); ks < i1; ks += block_k) {
    const int64_t bk = std::min(block_k, i1 - ks);
    at::Tensor p = (c.logits(qb, i0, i1, ks, bk).view({c.B, c.Hkv, c.g, bq, bk}) - lse_used).exp_();
    mass.narrow(2, ks, bk).add_(p.sum({2, 3}));
  }
}

}  // namespace

BlockwiseResult blockwise_causal_attention_mass(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                                int64_t q_offset, std::optional<int64_t> window, double scale,
                                                const BlockwiseOptions& opts, const TileReport& report,
                                                int64_t mass_rows) {
  const BlockwiseCall c(q, k, v, q_offset, window, scale);
  if (opts.block_q <= 0 || opts.block_k <= 0) fail("attention: block sizes must be > 0");
  const int64_t B = c.B, H = c.H, Hkv = c.Hkv, Tq = c.Tq, D = c.D, Dv = c.Dv, g = c.g;
  const bool report_tiles = report.observers && report.observers->wants(Site::kAttnLogits, report.layer);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  auto f32 = q.options().dtype(c.acc_t);
  const int64_t first_row = q_offset + Tq - std::min(mass_rows, Tq);  // cache index of the first asked row

  BlockwiseResult r;
  r.out = at::empty({B, H, Tq, Dv}, q.options());
  if (mass_rows > 0) r.key_mass = at::zeros({B, Hkv, c.K}, f32);
  for (int64_t qs = 0; qs < Tq; qs += opts.block_q) {
    const int64_t bq = std::min(opts.block_q, Tq - qs);
    // [B, H, bq, D] -> [B, Hkv, g*bq, D]: rows (group member, query) of one kv head.
    at::Tensor qb = q.narrow(2, qs, bq).reshape({B, Hkv, g * bq, D});
    const int64_t i0 = q_offset + qs, i1 = i0 + bq;  // cache indices of this tile's queries

    at::Tensor m = at::full({B, Hkv, g * bq, 1}, neg_inf, f32);
    at::Tensor l = at::zeros({B, Hkv, g * bq, 1}, f32);
    at::Tensor acc = at::zeros({B, Hkv, g * bq, Dv}, f32);
    for (int64_t ks = c.first_key(i0); ks < i1; ks += opts.block_k) {
      const int64_t bk = std::min(opts.block_k, i1 - ks);
      at::Tensor s = c.logits(qb, i0, i1, ks, bk);  // [B, Hkv, g*bq, bk]
      if (report_tiles) report_tile(report, s, B, H, bq, i0, ks, bk);
      at::Tensor m_new = at::maximum(m, std::get<0>(s.max(-1, /*keepdim=*/true)));
      // Rows with no visible key yet keep m = -inf; shift them by 0 so exp() gives 0, not NaN.
      at::Tensor m_safe = at::where(at::isinf(m_new), at::zeros_like(m_new), m_new);
      at::Tensor p = at::exp(s - m_safe);
      at::Tensor corr = at::exp(m - m_safe);
      l = l * corr + p.sum(-1, /*keepdim=*/true);
      at::Tensor pv = lminf::matmul(p.to(c.dtype), v.narrow(2, ks, bk));
      acc = acc * corr + pv.to(c.acc_t);
      m = m_new;
    }
    at::Tensor ob = (acc / l).to(c.dtype).view({B, H, bq, Dv});
    r.out.narrow(2, qs, bq).copy_(ob);
    if (mass_rows > 0 && i1 > first_row) add_tile_mass(c, qb, i0, i1, m + l.log(), first_row, opts.block_k, r.key_mass);
  }
  return r;
}

at::Tensor blockwise_causal_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      int64_t q_offset, std::optional<int64_t> window, double scale,
                                      const BlockwiseOptions& opts, const TileReport& report) {
  return blockwise_causal_attention_mass(q, k, v, q_offset, window, scale, opts, report, 0).out;
}

}  // namespace lminf
