#include "attention/kernels/band_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "framework/core/error.h"
#include "framework/core/linear.h"

namespace lminf {
namespace {

// Running softmax state of one query tile: rows are (group member, query) of one kv head.
struct OnlineSoftmax {
  at::Tensor m;    // [B, Hkv, rows, 1] running max
  at::Tensor l;    // [B, Hkv, rows, 1] running sum of exp(logit - m)
  at::Tensor acc;  // [B, Hkv, rows, Dv] running sum of exp(logit - m) * v

  // s: [B, Hkv, rows, bk] scaled logits (masked entries -inf), consumed in place; vb: [B, Hkv, bk, Dv].
  void add(at::Tensor& s, const at::Tensor& vb, at::ScalarType run_dtype) {
    at::Tensor m_new = at::maximum(m, std::get<0>(s.max(-1, /*keepdim=*/true)));
    // Rows with no visible key yet keep m = -inf; shift them by 0 so exp() gives 0, not NaN.
    at::Tensor m_safe = at::where(at::isinf(m_new), at::zeros_like(m_new), m_new);
    s.sub_(m_safe).exp_();
    at::Tensor corr = at::exp(m - m_safe);
    l.mul_(corr).add_(s.sum(-1, /*keepdim=*/true));
    at::Tensor pv = lminf::matmul(s.to(run_dtype), vb);
    acc.mul_(corr).add_(pv.to(acc.scalar_type()));
    m = m_new;
  }
};

// -tau * ln(p - L + 1 - G) on keys j >= G with p - j >= L; [bq, bk] in `dt`, or undefined when no
// entry of the tile is in the middle.
at::Tensor triangle_tile(const TriangleBias& t, int64_t i0, int64_t bq, int64_t ks, int64_t bk, at::ScalarType dt,
                         const at::TensorOptions& idx) {
  // The tile has a middle entry iff its last row reaches past its first eligible key.
  const int64_t first_key = std::max(ks, t.global);
  if (first_key >= ks + bk || (i0 + bq - 1) - first_key < t.local) return at::Tensor();
  at::Tensor p = at::arange(i0, i0 + bq, idx).unsqueeze(1);  // [bq, 1]
  at::Tensor j = at::arange(ks, ks + bk, idx).unsqueeze(0);  // [1, bk]
  at::Tensor middle = at::logical_and(j >= t.global, (p - j) >= t.local);
  at::Tensor n_mid = (p - t.local + 1 - t.global).clamp_min(1).to(at::kDouble);  // >= 1 wherever used
  at::Tensor row = n_mid.log().mul_(-t.tau);                                     // [bq, 1]
  return at::where(middle, row, at::zeros({1}, row.options())).to(dt);
}

// far_q_pos[qs + r] - k_pos of far keys [ks, ks + bk): [bq, bk], in the positions' promoted dtype
// (int64 for integer positions, float64 for fractional ones) on `dev`.
at::Tensor far_distance(const AlibiBias& al, int64_t qs, int64_t bq, int64_t ks, int64_t bk, at::Device dev) {
  const at::Tensor fq = al.far_q_pos.to(dev);
  at::Tensor qp = (fq.size(0) == 1 ? fq.expand({bq}) : fq.narrow(0, qs, bq)).unsqueeze(1);  // [bq, 1]
  if (al.far_k_pos.defined()) return qp - al.far_k_pos.to(dev).narrow(0, ks, bk).unsqueeze(0);
  if (!al.far_k_at_index) return qp.expand({bq, bk});
  return qp - at::arange(ks, ks + bk, at::TensorOptions().device(dev).dtype(at::kLong)).unsqueeze(0);
}

// Hands observers one tile of scaled logits s (viewable as [B, H, bq, bk]; masked entries -inf), a copy.
void emit_tile(const TileReport& r, const at::Tensor& s, int64_t B, int64_t H, int64_t bq, int64_t bk,
               int64_t q_start, int64_t k_start, at::ScalarType acc_t) {
  Observation o;
  o.site = Site::kAttnLogits;
  o.layer = r.layer;
  o.data = s.reshape({B, H, bq, bk}).to(acc_t, /*non_blocking=*/false, /*copy=*/true);
  o.q_start = q_start;
  o.k_start = k_start;
  o.head_offset = r.head_offset;
  r.observers->emit(o);
}

bool wants_tiles(const TileReport& r) { return r.observers && r.observers->wants(Site::kAttnLogits, r.layer); }

}  // namespace

namespace {

// One call of band_attention: the arguments, the shapes and options derived from them, and the two
// ways of computing a query tile (one fused [far | band] softmax, or key tiles with an online softmax).
class BandKernel {
 public:
  explicit BandKernel(const BandAttentionArgs& args) : a(args), q(args.q_near) {
    B = q.size(0), H = q.size(1), Tq = q.size(2), D = q.size(3);
    Hkv = a.v.size(1), K = a.v.size(2), Dv = a.v.size(3);
    far = a.q_far.defined() && a.window;
    W = a.window.value_or(std::numeric_limits<int64_t>::max());
    check_args();
    F = far ? a.k_far.size(2) : 0;
    g = H / Hkv;
    dtype = q.scalar_type();
    acc_t = dtype == at::kDouble ? at::kDouble : at::kFloat;
    f_opts = q.options().dtype(acc_t);
    idx = q.options().dtype(at::kLong);  // index tensors live beside the queries (CPU or CUDA)
    report_tiles = wants_tiles(a.report);
    fused = a.window && !a.want_lse && !a.triangle && F <= a.opts.block_k && W <= 16 * a.opts.block_k;
    // ALiBi: slopes as [Hkv, g, 1, 1] to broadcast over a tile viewed [B, Hkv, g, bq, bk].
    if (a.alibi) neg_slopes = a.alibi->slopes.to(q.device(), acc_t).neg().view({Hkv, g, 1, 1});
    first_mass_row = a.q_offset + Tq - std::min(a.mass_rows, Tq);
  }

  BandAttentionResult run() {
    at::Tensor out = at::empty({B, H, Tq, Dv}, q.options());
    at::Tensor lse = a.want_lse ? at::empty({B, H, Tq}, f_opts) : at::Tensor();
    if (a.mass_rows > 0) mass = at::zeros({B, Hkv, K}, f_opts);
    for (int64_t qs = 0; qs < Tq; qs += a.opts.block_q) {
      QueryTile t = query_tile(qs);
      if (fused) {
        out.narrow(2, qs, t.bq).copy_(fused_tile(t).view({B, H, t.bq, Dv}));
        continue;
      }
      OnlineSoftmax sm = online_tile(t);
      // Every row sees at least its own key, so l > 0.
      out.narrow(2, qs, t.bq).copy_((sm.acc / sm.l).to(dtype).view({B, H, t.bq, Dv}));
      if (a.want_lse) lse.narrow(2, qs, t.bq).copy_((sm.m + sm.l.log()).view({B, H, t.bq}));
      if (mass.defined() && t.i1 > first_mass_row) online_mass(t, sm.m + sm.l.log());
    }
    return {out, lse, mass};
  }

 private:
  // The queries [qs, qs + bq) of the call, at cache indices [i0, i1).
  struct QueryTile {
    int64_t qs, bq, i0, i1, rows;
    at::Tensor qi;   // [bq, 1] cache indices
    at::Tensor qb;   // [B, Hkv, rows, D] near queries
    at::Tensor qfb;  // [B, Hkv, rows, D] far queries (undefined without a far branch)
    int64_t nf, lo;  // far columns [0, nf): keys >= W away from at least the last query; band [lo, i1)
  };

  void check_args() const {
    if (H % Hkv != 0) fail("attention: ", H, " query heads are not a multiple of ", Hkv, " key/value heads");
    if (a.q_offset < 0 || a.q_offset + Tq > K)
      fail("attention: queries at cache indices [", a.q_offset, ", ", a.q_offset + Tq, ") but ", K, " keys");
    if (a.window && *a.window < 1) fail("attention: window must be >= 1, got ", *a.window);
    if (a.opts.block_q <= 0 || a.opts.block_k <= 0) fail("attention: block sizes must be > 0");
    const int64_t band_lo = a.window ? std::max<int64_t>(0, a.q_offset - W + 1) : 0;
    if (a.near_start > band_lo || a.near_start + a.k_near.size(2) < a.q_offset + Tq)
      fail("attention: near keys cover [", a.near_start, ", ", a.near_start + a.k_near.size(2),
           ") but the band needs [", band_lo, ", ", a.q_offset + Tq, ")");
  }

  QueryTile query_tile(int64_t qs) const {
    QueryTile t;
    t.qs = qs;
    t.bq = std::min(a.opts.block_q, Tq - qs);
    t.i0 = a.q_offset + qs, t.i1 = t.i0 + t.bq;
    t.rows = g * t.bq;
    t.qi = at::arange(t.i0, t.i1, idx).unsqueeze(1);
    t.qb = q.narrow(2, qs, t.bq).reshape({B, Hkv, t.rows, D});
    if (far) t.qfb = a.q_far.narrow(2, qs, t.bq).reshape({B, Hkv, t.rows, D});
    t.nf = far ? std::max<int64_t>(0, std::min(F, t.i1 - W)) : 0;
    t.lo = a.window ? std::max<int64_t>(0, t.i0 - W + 1) : 0;
    return t;
  }

  // -m_h * distance for the tile of rows [qs, qs + bq) x keys [ks, ks + bk): [Hkv, g, bq, bk] in acc_t.
  at::Tensor alibi_tile(int64_t qs, int64_t bq, int64_t ks, int64_t bk, bool is_far) const {
    at::Tensor dist = is_far ? far_distance(*a.alibi, qs, bq, ks, bk, q.device())
                             : at::arange(a.q_offset + qs, a.q_offset + qs + bq, idx).unsqueeze(1) -
                                   at::arange(ks, ks + bk, idx).unsqueeze(0);
    return neg_slopes * dist.to(acc_t);
  }

  void report(const at::Tensor& s, int64_t i0, int64_t bq, int64_t ks, int64_t bk, bool is_far) const {
    emit_tile(a.report, s, B, H, bq, bk, a.report.abs_offset + i0, is_far ? ks : a.report.abs_offset + ks, acc_t);
  }

  // One tile [far | band], one masked softmax, one matmul per part with the matching values.
  // Returns [B, Hkv, rows, Dv] in the queries' dtype.
  at::Tensor fused_tile(const QueryTile& t) {
    const int64_t nf = t.nf, lo = t.lo, bq = t.bq, i0 = t.i0, i1 = t.i1;
    const int64_t bw = i1 - lo, cols = nf + bw;
    at::Tensor s;
    if (!a.alibi) {
      s = at::empty({B, Hkv, t.rows, cols}, q.options());
      if (nf > 0) {
        at::Tensor s_far = s.narrow(-1, 0, nf);
        lminf::matmul_out(s_far, t.qfb, a.k_far.narrow(2, 0, nf).transpose(-1, -2));
      }
      at::Tensor s_band = s.narrow(-1, nf, bw);
      lminf::matmul_out(s_band, t.qb, a.k_near.narrow(2, lo - a.near_start, bw).transpose(-1, -2));
    } else {
      // Biased logits in float32: -m * d is large beside a bfloat16 logit's resolution.
      s = at::empty({B, Hkv, t.rows, cols}, q.options().dtype(acc_t));
      if (nf > 0) s.narrow(-1, 0, nf).copy_(lminf::matmul(t.qfb, a.k_far.narrow(2, 0, nf).transpose(-1, -2)));
      s.narrow(-1, nf, bw).copy_(lminf::matmul(t.qb, a.k_near.narrow(2, lo - a.near_start, bw).transpose(-1, -2)));
    }
    at::Tensor kj = at::arange(lo, i1, idx).unsqueeze(0);  // [1, bw]
    at::Tensor hidden = at::logical_or(kj > t.qi, (t.qi - kj) >= W);
    if (nf > 0) hidden = at::cat({(t.qi - at::arange(0, nf, idx).unsqueeze(0)) < W, hidden}, 1);  // [bq, cols]
    at::Tensor s5 = s.view({B, Hkv, g, bq, cols});
    if (a.alibi) {
      if (nf > 0) s5.narrow(-1, 0, nf).add_(alibi_tile(t.qs, bq, 0, nf, /*is_far=*/true));
      s5.narrow(-1, nf, bw).add_(alibi_tile(t.qs, bq, lo, bw, /*is_far=*/false));
    }
    s5.masked_fill_(hidden, neg_inf);
    if (report_tiles) {
      if (nf > 0) report(s5.narrow(-1, 0, nf), i0, bq, 0, nf, /*is_far=*/true);
      report(s5.narrow(-1, nf, bw), i0, bq, lo, bw, /*is_far=*/false);
    }
    at::Tensor p;
    if (mass.defined() && i1 > first_mass_row) {
      p = at::softmax(s, -1, acc_t);  // probabilities in float32 for the mass, then the same rounding
      add_mass(t, p, 0, nf, 0);
      add_mass(t, p, nf, bw, lo);
      p = p.to(dtype);
    } else {
      p = at::softmax(s, -1).to(dtype);  // float32 statistics inside ATen's kernel
    }
    at::Tensor o = lminf::matmul(p.narrow(-1, nf, bw), a.v.narrow(2, lo, bw));  // [B, Hkv, rows, Dv]
    if (nf > 0) o.add_(lminf::matmul(p.narrow(-1, 0, nf), a.v.narrow(2, 0, nf)));
    return o;
  }

  // One key tile: its logits, report, update.
  void key_tile(const QueryTile& t, OnlineSoftmax& sm, const at::Tensor& qt, const at::Tensor& kb,
                const at::Tensor& vb, int64_t ks, int64_t bk, bool is_far) const {
    at::Tensor s = tile_logits(t, qt, kb, ks, bk, is_far);
    if (report_tiles) report(s, t.i0, t.bq, ks, bk, is_far);
    sm.add(s, vb, dtype);
  }

  // Adds the columns [c0, c0 + n) of probabilities p ([B, Hkv, rows, cols], rows (group member,
  // query)) to the mass of keys [k0, k0 + n), over the tile's rows at cache index >= first_mass_row.
  void add_mass(const QueryTile& t, const at::Tensor& p, int64_t c0, int64_t n, int64_t k0) {
    if (n == 0) return;
    at::Tensor p5 = p.narrow(-1, c0, n).view({B, Hkv, g, t.bq, n});
    const int64_t skip = std::max<int64_t>(0, first_mass_row - t.i0);  // rows before the asked ones
    mass.narrow(2, k0, n).add_(p5.narrow(3, skip, t.bq - skip).sum({2, 3}).to(mass.scalar_type()));
  }

  // The second pass of the online path: each key tile's logits again, weighed by the rows' final
  // log-sum-exp lse ([B, Hkv, rows, 1]).
  void online_mass(const QueryTile& t, const at::Tensor& lse) {
    auto pass = [&](const at::Tensor& qt, const at::Tensor& keys, int64_t key0, int64_t from, int64_t to, bool is_far) {
      for (int64_t ks = from; ks < to; ks += a.opts.block_k) {
        const int64_t bk = std::min(a.opts.block_k, to - ks);
        at::Tensor s = tile_logits(t, qt, keys.narrow(2, ks - key0, bk), ks, bk, is_far);
        add_mass(t, s.sub_(lse).exp_(), 0, bk, ks);
      }
    };
    pass(t.qfb, a.k_far, 0, 0, t.nf, /*is_far=*/true);
    pass(t.qb, a.k_near, a.near_start, t.lo, t.i1, /*is_far=*/false);
  }

  // Scores of one key tile in acc_t, masks (computed only when the tile is cut), ALiBi and triangle
  // bias: [B, Hkv, rows, bk], hidden entries -inf.
  at::Tensor tile_logits(const QueryTile& t, const at::Tensor& qt, const at::Tensor& kb, int64_t ks, int64_t bk,
                         bool is_far) const {
    const int64_t i0 = t.i0, i1 = t.i1, bq = t.bq;
    at::Tensor s = lminf::matmul(qt, kb.transpose(-1, -2)).to(acc_t);  // [B, Hkv, rows, bk]
    at::Tensor s5 = s.view({B, Hkv, g, bq, bk});
    if (a.alibi) s5.add_(alibi_tile(i0 - a.q_offset, bq, ks, bk, is_far));
    if (is_far) {
      // Visible iff p - j >= W; cut when the tile's last key is nearer than W to the first query.
      if (ks + bk - 1 > i0 - W) {
        at::Tensor kj = at::arange(ks, ks + bk, idx).unsqueeze(0);
        s5.masked_fill_((t.qi - kj) < W, neg_inf);
      }
    } else {
      const bool causal_cut = ks + bk - 1 > i0;
      const bool window_cut = a.window && (i1 - 1) - ks >= W;
      if (causal_cut || window_cut) {
        at::Tensor kj = at::arange(ks, ks + bk, idx).unsqueeze(0);
        at::Tensor hidden = kj > t.qi;
        if (window_cut) hidden = at::logical_or(hidden, (t.qi - kj) >= W);
        s5.masked_fill_(hidden, neg_inf);
      }
    }
    if (a.triangle) {
      at::Tensor bias = triangle_tile(*a.triangle, i0, bq, ks, bk, acc_t, idx);
      if (bias.defined()) s5.add_(bias);
    }
    return s;
  }

  // The far columns, then the band, in key tiles of block_k.
  OnlineSoftmax online_tile(const QueryTile& t) const {
    OnlineSoftmax sm{at::full({B, Hkv, t.rows, 1}, neg_inf, f_opts), at::zeros({B, Hkv, t.rows, 1}, f_opts),
                     at::zeros({B, Hkv, t.rows, Dv}, f_opts)};
    for (int64_t ks = 0; ks < t.nf; ks += a.opts.block_k) {
      const int64_t bk = std::min(a.opts.block_k, t.nf - ks);
      key_tile(t, sm, t.qfb, a.k_far.narrow(2, ks, bk), a.v.narrow(2, ks, bk), ks, bk, /*is_far=*/true);
    }
    for (int64_t ks = t.lo; ks < t.i1; ks += a.opts.block_k) {
      const int64_t bk = std::min(a.opts.block_k, t.i1 - ks);
      key_tile(t, sm, t.qb, a.k_near.narrow(2, ks - a.near_start, bk), a.v.narrow(2, ks, bk), ks, bk,
               /*is_far=*/false);
    }
    return sm;
  }

  const BandAttentionArgs& a;
  const at::Tensor& q;
  int64_t B, H, Tq, D, Hkv, K, Dv, W, F, g;
  bool far, report_tiles, fused;
  at::ScalarType dtype, acc_t;
  at::TensorOptions f_opts, idx;
  at::Tensor neg_slopes;  // [Hkv, g, 1, 1]: ALiBi only
  int64_t first_mass_row = 0;  // cache index of the first row whose mass is asked
  at::Tensor mass;             // [B, Hkv, K] in acc_t when a.mass_rows > 0
  static constexpr float neg_inf = -std::numeric_limits<float>::infinity();
};

}  // namespace

BandAttentionResult band_attention(const BandAttentionArgs& a) { return BandKernel(a).run(); }

at::Tensor rotate_scaled(const RotaryEmbedding& rope, const at::Tensor& x, const at::Tensor& positions, int64_t seq_len,
                         double scale) {
  // Scaled in float32 (float64 for float64 inputs) before the cast to x's dtype.
  const auto t = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const int64_t T = x.size(2), P = positions.size(0);
  // In chunks of rows, so the rotation's temporaries stay O(chunk) beside the O(T) result.
  const int64_t chunk = 1024;
  at::Tensor out = T <= chunk ? at::Tensor() : at::empty_like(x, at::MemoryFormat::Contiguous);
  for (int64_t r = 0; r < T; r += chunk) {
    const int64_t n = std::min(chunk, T - r);
    auto cs = rope.cos_sin(P == 1 ? positions : positions.narrow(0, r, n), seq_len);
    at::Tensor y = rope.apply_rotation(x.narrow(2, r, n), cs.first.to(t) * scale, cs.second.to(t) * scale);
    // Partial rotary (GPT-J): the features past rot_dim pass through the rotation unscaled.
    if (rope.rot_dim() < x.size(3) && scale != 1.0) y.narrow(3, rope.rot_dim(), x.size(3) - rope.rot_dim()).mul_(scale);
    if (!out.defined()) return y;
    out.narrow(2, r, n).copy_(y);
  }
  return out;
}

at::Tensor encode_scaled(const RotaryEmbedding* rope, const at::Tensor& x, const at::Tensor& positions,
                         int64_t seq_len, double scale) {
  if (rope) return rotate_scaled(*rope, x, positions, seq_len, scale);
  if (scale == 1.0) return x;
  const auto t = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  return (x.to(t) * scale).to(x.scalar_type());
}

std::optional<AlibiBias> alibi_far(const at::Tensor& slopes, const at::Tensor& far_q_pos, bool far_k_at_index) {
  if (!slopes.defined()) return std::nullopt;
  return AlibiBias{slopes, far_q_pos, far_k_at_index, {}};
}

std::optional<AlibiBias> alibi_far(const at::Tensor& slopes, const at::Tensor& far_q_pos, const at::Tensor& far_k_pos) {
  if (!slopes.defined()) return std::nullopt;
  return AlibiBias{slopes, far_q_pos, false, far_k_pos};
}

at::Tensor scale_rows(const at::Tensor& x, const at::Tensor& row_scale) {
  if (!row_scale.defined()) return x;
  const auto t = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  return (x.to(t) * row_scale.to(x.device(), t).view({1, 1, -1, 1})).to(x.scalar_type());
}

BandAttentionResult rectangle_attention(const RectangleAttentionArgs& a) {
  const at::Tensor& q = a.q;
  const int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), D = q.size(3);
  const int64_t Hkv = a.v.size(1), F = a.v.size(2), Dv = a.v.size(3);
  if (H % Hkv != 0) fail("attention: ", H, " query heads are not a multiple of ", Hkv, " key/value heads");
  LMINF_CHECK(F >= 1 && a.k.size(2) == F, "rectangle_attention needs matching keys and values, got ", a.k.size(2),
              " keys and ", F, " values");
  if (a.opts.block_q <= 0 || a.opts.block_k <= 0) fail("attention: block sizes must be > 0");
  const int64_t g = H / Hkv;
  const at::ScalarType dtype = q.scalar_type(), acc_t = dtype == at::kDouble ? at::kDouble : at::kFloat;
  const at::TensorOptions f_opts = q.options().dtype(acc_t);
  const bool report_tiles = wants_tiles(a.report);
  at::Tensor neg_slopes;  // [Hkv, g, 1, 1]: ALiBi only
  if (a.alibi) neg_slopes = a.alibi->slopes.to(q.device(), acc_t).neg().view({Hkv, g, 1, 1});
  at::Tensor out = at::empty({B, H, Tq, Dv}, q.options()), lse = at::empty({B, H, Tq}, f_opts);
  for (int64_t qs = 0; qs < Tq; qs += a.opts.block_q) {
    const int64_t bq = std::min(a.opts.block_q, Tq - qs), rows = g * bq;
    at::Tensor qb = q.narrow(2, qs, bq).reshape({B, Hkv, rows, D});
    OnlineSoftmax sm{at::full({B, Hkv, rows, 1}, -std::numeric_limits<float>::infinity(), f_opts),
                     at::zeros({B, Hkv, rows, 1}, f_opts), at::zeros({B, Hkv, rows, Dv}, f_opts)};
    for (int64_t ks = 0; ks < F; ks += a.opts.block_k) {
      const int64_t bk = std::min(a.opts.block_k, F - ks);
      at::Tensor s = lminf::matmul(qb, a.k.narrow(2, ks, bk).transpose(-1, -2)).to(acc_t);  // [B, Hkv, rows, bk]
      if (a.alibi)
        s.view({B, Hkv, g, bq, bk}).add_(neg_slopes * far_distance(*a.alibi, qs, bq, ks, bk, q.device()).to(acc_t));
      if (report_tiles) emit_tile(a.report, s, B, H, bq, bk, a.q_start_abs + qs, a.k_start_abs + ks, acc_t);
      sm.add(s, a.v.narrow(2, ks, bk), dtype);
    }
    out.narrow(2, qs, bq).copy_((sm.acc / sm.l).to(dtype).view({B, H, bq, Dv}));
    lse.narrow(2, qs, bq).copy_((sm.m + sm.l.log()).view({B, H, bq}));
  }
  return {out, lse, {}};
}

BandAttentionResult merge_attention(const BandAttentionResult& a, const BandAttentionResult& b) {
  at::Tensor lse = at::logaddexp(a.lse, b.lse);
  at::Tensor wa = at::exp(a.lse - lse).unsqueeze(-1), wb = at::exp(b.lse - lse).unsqueeze(-1);
  const auto acc_t = lse.scalar_type();
  at::Tensor out = a.out.to(acc_t) * wa + b.out.to(acc_t) * wb;
  return {out.to(a.out.scalar_type()), lse, at::Tensor()};
}

}  // namespace lminf
