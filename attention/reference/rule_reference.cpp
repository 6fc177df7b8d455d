#include "attention/reference/rule_reference.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <utility>
#include <stdexcept>
#include <string>
#include <vector>

namespace lminf {
namespace {

// The rule's tables, filled pair by pair. Positions are held in float64 and handed out as int64
// unless the rule has fractional positions (Leaky ReRoPE).
struct RuleTables {
  at::Tensor visible, q_pos, k_pos, bias;
  RuleTables(int64_t Tq, int64_t K)
      : visible(at::zeros({Tq, K}, at::kBool)),
        q_pos(at::zeros({Tq, K}, at::kDouble)),
        k_pos(at::zeros({Tq, K}, at::kDouble)),
        bias(at::zeros({Tq, K}, at::kDouble)) {}
  void see(int64_t i, int64_t j, double qp, double kp, double b = 0.0) {
    visible.accessor<bool, 2>()[i][j] = true;
    q_pos.accessor<double, 2>()[i][j] = qp;
    k_pos.accessor<double, 2>()[i][j] = kp;
    bias.accessor<double, 2>()[i][j] = b;
  }
  AttentionRule rule(bool fractional = false) const {
    if (fractional) return {visible, q_pos, k_pos, bias, {}};
    return {visible, q_pos.to(at::kLong), k_pos.to(at::kLong), bias, {}};
  }
};

// x's first r = cos.size(-1) features rotated by (cos, sin), float64, the rest unchanged:
// rotate-half pairs feature i with i + r/2 ([x1, x2] -> x*cos + [-x2, x1]*sin); interleaved pairs
// 2i with 2i+1 ((a, b) -> (a cos - b sin, b cos + a sin)).
at::Tensor rotate(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, RopeLayout layout) {
  const int64_t d = x.size(-1), r = cos.size(-1);
  at::Tensor xr = x.narrow(-1, 0, r);
  at::Tensor partner;
  if (layout == RopeLayout::kHalf) {
    partner = at::cat({-xr.narrow(-1, r / 2, r / 2), xr.narrow(-1, 0, r / 2)}, -1);
  } else {
    partner = at::empty_like(xr);
    for (int64_t i = 0; i < r; i += 2) {
      partner.select(-1, i).copy_(-xr.select(-1, i + 1));
      partner.select(-1, i + 1).copy_(xr.select(-1, i));
    }
  }
  at::Tensor out = xr * cos + partner * sin;  // broadcast over the tables' [Tq, K]
  if (r == d) return out;
  std::vector<int64_t> pass_shape = out.sizes().vec();
  pass_shape.back() = d - r;
  return at::cat({out, x.narrow(-1, r, d - r).expand(pass_shape)}, -1);
}

}  // namespace

AttentionRule vanilla_rule(int64_t Tq, int64_t K, int64_t q_offset) {
  RuleTables t(Tq, K);
  for (int64_t i = 0; i < Tq; ++i) {
    const int64_t p = q_offset + i;
    for (int64_t j = 0; j <= p; ++j) t.see(i, j, p, j);
  }
  return t.rule();
}

AttentionRule lambda_rule(int64_t Tq, int64_t K, int64_t q_offset, int64_t L, int64_t G, std::optional<int64_t> D) {
  RuleTables t(Tq, K);
  for (int64_t i = 0; i < Tq; ++i) {
    const int64_t p = q_offset + i;
    for (int64_t j = 0; j <= p; ++j) {
      if (p - j < L) {
        t.see(i, j, p, j);  // local branch: true distance
      } else if (j < G) {
        if (D)
          t.see(i, j, std::min(*D, K - 1), 0);  // global branch: distance D_eff
        else
          t.see(i, j, p, j);
      }
    }
  }
  return t.rule();
}

AttentionRule streaming_rule(int64_t Tq, int64_t K, int64_t q_offset, int64_t S, int64_t R) {
  RuleTables t(Tq, K);
  for (int64_t i = 0; i < Tq; ++i) {
    const int64_t p = q_offset + i;
    for (int64_t j = 0; j <= p; ++j) {
      if (p - j < R)
        t.see(i, j, p, j);
      else if (j < S)
        t.see(i, j, std::min(p, S + R - 1), j);
    }
  }
  return t.rule();
}

AttentionRule distance_limit_rule(int64_t Tq, int64_t K, int64_t q_offset, std::optional<int64_t> D, int64_t L,
                                  int64_t G, double tau) {
  RuleTables t(Tq, K);
  for (int64_t i = 0; i < Tq; ++i) {
    const int64_t p = q_offset + i;
    for (int64_t j = 0; j <= p; ++j) {
      const double b = (tau != 0.0 && j >= G && p - j >= L) ? -tau * std::log(double(p - L + 1 - G)) : 0.0;
      if (!D || p - j < *D)
        t.see(i, j, p, j, b);
      else
        t.see(i, j, std::min(*D, K - 1), 0, b);
    }
  }
  return t.rule();
}

AttentionRule self_extend_rule(int64_t Tq, int64_t K, int64_t q_offset, int64_t G, int64_t W) {
  RuleTables t(Tq, K);
  for (int64_t i = 0; i < Tq; ++i) {
    const int64_t p = q_offset + i;
    for (int64_t j = 0; j <= p; ++j) {
      if (p - j < W)
        t.see(i, j, double(p), double(j));
      else
        t.see(i, j, double(p / G + W - W / G), double(j / G));
    }
  }
  return t.rule();
}

AttentionRule rerope_rule(int64_t Tq, int64_t K, int64_t q_offset, int64_t w, std::optional<double> leaky_k,
                          std::optional<int64_t> log_scale_base) {
  RuleTables t(Tq, K);
  at::Tensor q_scale = at::ones({Tq}, at::kDouble);
  auto qs = q_scale.accessor<double, 1>();
  for (int64_t i = 0; i < Tq; ++i) {
    const int64_t p = q_offset + i;
    if (log_scale_base)
      qs[i] = std::max(1.0, std::log(double(p + 1)) / std::log(double(*log_scale_base)));
    for (int64_t j = 0; j <= p; ++j) {
      if (p - j < w)
        t.see(i, j, double(p), double(j));
      else if (!leaky_k)
        t.see(i, j, double(w), 0.0);
      else
        t.see(i, j, (double(p) + double(w) * (*leaky_k - 1.0)) / *leaky_k, double(j) / *leaky_k);
    }
  }
  AttentionRule r = t.rule(/*fractional=*/leaky_k.has_value());
  if (log_scale_base) r.q_scale = q_scale;
  return r;
}

AttentionRule dca_rule(int64_t Tq, int64_t K, int64_t q_offset, int64_t chunk_size, int64_t local_window) {
  const int64_t c = chunk_size - local_window;  // chunk_len
  RuleTables t(Tq, K);
  for (int64_t i = 0; i < Tq; ++i) {
    const int64_t p = q_offset + i, n = p / c, r = p % c;
    for (int64_t j = 0; j <= p; ++j) {
      const int64_t m = j / c;
      if (m == n)
        t.see(i, j, double(r), double(j % c));  // intra-chunk
      else if (m == n - 1)
        t.see(i, j, double(c + std::min(r, local_window)), double(j % c));  // successive chunk
      else
        t.see(i, j, double(c + std::min(c - 1, local_window)), double(j % c));  // inter-chunk
    }
  }
  return t.rule();
}

at::Tensor rule_logits(const at::Tensor& q, const at::Tensor& k, const AttentionRule& rule, const RuleEncoding& enc,
                       int64_t seq_len, double scale) {
  const int64_t g = q.size(1) / k.size(1), Tq = q.size(2);
  at::Tensor qd = q.to(at::kDouble).unsqueeze(-2);                          // [B, H, Tq, 1, D]
  at::Tensor kd = k.to(at::kDouble).repeat_interleave(g, 1).unsqueeze(-3);  // [B, H, 1, K, D]
  // The per-row logit scale multiplies q . k, not the bias or the ALiBi term.
  at::Tensor row_scale = rule.q_scale.defined() ? rule.q_scale.to(at::kDouble).view({Tq, 1}) * scale
                                                : at::full({1}, scale, at::kDouble);
  at::Tensor s;
  if (!enc.rope) {
    // ALiBi: plain dot products, then -m_h * (q_pos - k_pos).
    at::Tensor dist = (rule.q_pos - rule.k_pos).to(at::kDouble);
    at::Tensor m = enc.alibi_slopes.to(at::kDouble).view({1, -1, 1, 1});
    s = (qd * kd).sum(-1) * row_scale + rule.bias - m * dist;
  } else {
    // Rotation tables at each entry's position, computed by rope.cos_sin (float32 phases, as the
    // variants compute them), integer or fractional alike.
    const RotaryEmbedding& rope = *enc.rope;
    auto tables = [&](const at::Tensor& pos) {
      auto cs = rope.cos_sin(pos.reshape({-1}), seq_len);
      std::vector<int64_t> shape = pos.sizes().vec();
      shape.push_back(rope.rot_dim());
      return std::make_pair(cs.first.to(at::kDouble).view(shape), cs.second.to(at::kDouble).view(shape));
    };
    auto [qc, qs] = tables(rule.q_pos);
    auto [kc, ks] = tables(rule.k_pos);
    at::Tensor qr = rotate(qd, qc, qs, rope.layout());
    at::Tensor kr = rotate(kd, kc, ks, rope.layout());
    s = (qr * kr).sum(-1) * row_scale + rule.bias;  // [B, H, Tq, K]
  }
  return s.masked_fill(at::logical_not(rule.visible), -std::numeric_limits<double>::infinity());
}

at::Tensor rule_attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                    const AttentionRule& rule, const RuleEncoding& enc, int64_t seq_len,
                                    double scale) {
  const int64_t g = q.size(1) / k.size(1);
  at::Tensor p = at::softmax(rule_logits(q, k, rule, enc, seq_len, scale), -1);
  p = at::nan_to_num(p, 0.0);  // rows with nothing visible
  return at::matmul(p, v.to(at::kDouble).repeat_interleave(g, 1));
}

AttentionRule topk_rule(const at::Tensor& q, const at::Tensor& k, int64_t q_offset, int64_t L, int64_t G,
                        std::optional<int64_t> D, int64_t top_k, int64_t insert_at, const RuleEncoding& enc,
                        int64_t seq_len, double scale) {
  const int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), K = k.size(2);
  AttentionRule base = lambda_rule(Tq, K, q_offset, L, G, D);
  AttentionRule r{base.visible.expand({B, H, Tq, K}).clone(), base.q_pos.expand({B, H, Tq, K}).clone(),
                  base.k_pos.expand({B, H, Tq, K}).clone(), base.bias.expand({B, H, Tq, K}).clone(), base.q_scale};
  const int64_t p = q_offset + Tq - 1;
  std::vector<int64_t> middle;
  for (int64_t j = G; j <= p - L; ++j) middle.push_back(j);
  if (static_cast<int64_t>(middle.size()) < top_k) return r;
  // Scores of every key against the last query, both rotated as the rule says: query at insert_at, key at 0.
  AttentionRule scoring{at::ones({1, K}, at::kBool), at::full({1, K}, insert_at, at::kLong),
                        at::zeros({1, K}, at::kLong), at::zeros({1, K}, at::kDouble), {}};
  at::Tensor s = rule_logits(q.narrow(2, Tq - 1, 1), k, scoring, enc, seq_len, scale);  // [B, H, 1, K]
  auto sa = s.accessor<double, 4>();
  auto vis = r.visible.accessor<bool, 4>();
  auto qp = r.q_pos.accessor<int64_t, 4>();
  auto kp = r.k_pos.accessor<int64_t, 4>();
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      std::vector<std::pair<double, int64_t>> cand;
      for (int64_t j : middle) cand.emplace_back(sa[b][h][0][j], j);
      std::sort(cand.begin(), cand.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
      for (int64_t c = 0; c < top_k; ++c) {
        const int64_t j = cand[static_cast<size_t>(c)].second;
        vis[b][h][Tq - 1][j] = true;
        qp[b][h][Tq - 1][j] = insert_at;
        kp[b][h][Tq - 1][j] = 0;
      }
    }
  }
  return r;
}


namespace {

// Unit roundoff of the dtype the variant computes in (its scores accumulate in float32 at least).
double unit_roundoff(at::ScalarType t) { return t == at::kDouble ? std::ldexp(1.0, -53) : std::ldexp(1.0, -24); }

// Whether a and b hold the same keys up to rounding in a dtype of unit roundoff u (a token repeated
// where keys carry no position, e.g. at layer 0): choosing either then gives the same attention.
bool same_keys(const at::Tensor& a, const at::Tensor& b, double u) {
  const double mag = std::max(a.abs().max().item<double>(), b.abs().max().item<double>());
  return (a - b).abs().max().item<double>() <= 64 * u * mag;
}

// The n largest entries of `score`, largest first, equal ones in index order. A gap between the n-th
// and the (n+1)-th of at most `tol` (the rounding bound of the variant's dtype) is accepted only when
// `same(a, b)` says the two candidates are interchangeable; otherwise rounding in the variant could
// pick either, and the rule throws rather than guess.
std::vector<int64_t> top_indices(const std::vector<double>& score, int64_t n, double tol, const std::string& what,
                                 const std::function<bool(int64_t, int64_t)>& same) {
  std::vector<int64_t> idx(score.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return score[a] > score[b]; });
  const auto n_candidates = static_cast<int64_t>(idx.size());
  if (n < n_candidates && score[idx[n - 1]] - score[idx[n]] <= tol && !same(idx[n - 1], idx[n])) {
    char gap[96];
    std::snprintf(gap, sizeof gap, "gap %.3g <= rounding bound %.3g, candidates %lld and %lld",
                  score[idx[n - 1]] - score[idx[n]], tol, static_cast<long long>(idx[n - 1]),
                  static_cast<long long>(idx[n]));
    throw std::runtime_error("infllm_rule: near tie among " + what + " (" + gap + "): change the test inputs");
  }
  idx.resize(static_cast<size_t>(std::min(n, n_candidates)));
  return idx;
}

// [B, Hkv, nb, D] float64: each block's representative key, the mean of its repr_topk keys with the
// largest dot product with the block's mean key.
at::Tensor infllm_reprs(const at::Tensor& k, const InfLLMRuleSizes& z, int64_t nb) {
  const int64_t B = k.size(0), Hkv = k.size(1), D = k.size(3);
  const double u = unit_roundoff(k.scalar_type());
  at::Tensor kd = k.to(at::kDouble), out = at::zeros({B, Hkv, nb, D}, at::kDouble);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hkv; ++h)
      for (int64_t blk = 0; blk < nb; ++blk) {
        at::Tensor keys = kd[b][h].narrow(0, z.n_init + blk * z.block, z.block);  // [block, D]
        at::Tensor mean = keys.mean(0);
        std::vector<double> typical;
        double mag = 0;
        for (int64_t t = 0; t < z.block; ++t) {
          typical.push_back(at::dot(keys[t], mean).item<double>());
          mag = std::max(mag, keys[t].norm().item<double>() * mean.norm().item<double>());
        }
        const double tol = double(D + z.block + 4) * u * mag;
        double n_rep = 0;
        auto same = [&](int64_t t1, int64_t t2) { return same_keys(keys[t1], keys[t2], u); };
        for (int64_t t : top_indices(typical, z.repr_topk, tol, "the representative tokens of a block", same)) {
          out[b][h][blk] += keys[t];
          ++n_rep;
        }
        out[b][h][blk] /= n_rep;
      }
  return out;
}

// The retrieved blocks of the chunk of queries qc [B, H, rows, D]: per (b, h), sorted ascending.
std::vector<std::vector<std::vector<int64_t>>> infllm_selection(const at::Tensor& qc, const at::Tensor& k,
                                                                const InfLLMRuleSizes& z, int64_t nb,
                                                                const RuleEncoding& enc, int64_t seq_len,
                                                                double scale) {
  const int64_t B = qc.size(0), H = qc.size(1), rows = qc.size(2), g = H / k.size(1), D = qc.size(3);
  std::vector<std::vector<std::vector<int64_t>>> sel(B, std::vector<std::vector<int64_t>>(H));
  std::vector<int64_t> all(static_cast<size_t>(nb));
  for (int64_t i = 0; i < nb; ++i) all[i] = i;
  if (nb <= z.topk) {
    for (auto& per_b : sel) std::fill(per_b.begin(), per_b.end(), all);
    return sel;
  }
  at::Tensor reprs = infllm_reprs(k, z, nb);
  // Every row against every representative key: query at n_local - 1, key at 0; then the chunk's mean.
  AttentionRule scoring{at::ones({rows, nb}, at::kBool), at::full({rows, nb}, z.n_local - 1, at::kLong),
                        at::zeros({rows, nb}, at::kLong), at::zeros({rows, nb}, at::kDouble), {}};
  at::Tensor s = rule_logits(qc, reprs, scoring, enc, seq_len, scale).mean(2);  // [B, H, nb]
  // Rounding bound of one score in the variant's dtype: dot products of length D, the mean over the
  // rows and over a block, the rotation.
  at::Tensor qn = qc.to(at::kDouble).norm(2, -1).mean(-1);  // [B, H]
  at::Tensor rn = reprs.norm(2, -1).amax(-1);               // [B, Hkv]
  const double u = unit_roundoff(qc.scalar_type()) * double(D + rows + z.block + 8) * scale;
  // Blocks with the same keys (in the kv heads a ranking reads) are interchangeable.
  const double u_k = unit_roundoff(k.scalar_type());
  auto block_keys = [&](int64_t b, int64_t kv_lo, int64_t n_kv, int64_t blk) {
    return k[b].narrow(0, kv_lo, n_kv).narrow(1, z.n_init + blk * z.block, z.block).to(at::kDouble);
  };
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> total(static_cast<size_t>(nb), 0.0);
    double total_mag = 0;
    for (int64_t h = 0; h < H; ++h) {
      std::vector<double> score(static_cast<size_t>(nb));
      for (int64_t i = 0; i < nb; ++i) score[i] = s[b][h][i].item<double>();
      const double mag = qn[b][h].item<double>() * rn[b][h / g].item<double>();
      total_mag += mag;
      for (int64_t i = 0; i < nb; ++i) total[i] += score[i];
      auto same = [&](int64_t x, int64_t y) {
        return same_keys(block_keys(b, h / g, 1, x), block_keys(b, h / g, 1, y), u_k);
      };
      if (z.perhead) sel[b][h] = top_indices(score, z.topk, u * mag, "the block scores of a head", same);
    }
    const int64_t Hkv = k.size(1);
    auto same = [&](int64_t x, int64_t y) {
      return same_keys(block_keys(b, 0, Hkv, x), block_keys(b, 0, Hkv, y), u_k);
    };
    if (!z.perhead)
      std::fill(sel[b].begin(), sel[b].end(), top_indices(total, z.topk, u * total_mag, "block scores", same));
    for (auto& v : sel[b]) std::sort(v.begin(), v.end());
  }
  return sel;
}

}  // namespace

AttentionRule infllm_rule(const at::Tensor& q, const at::Tensor& k, int64_t q_offset, const InfLLMRuleSizes& z,
                          const RuleEncoding& enc, int64_t seq_len, double scale) {
  const int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), K = k.size(2);
  AttentionRule base = lambda_rule(Tq, K, q_offset, z.n_local, z.n_init, z.n_local - 1);
  AttentionRule r{base.visible.expand({B, H, Tq, K}).clone(), base.q_pos.expand({B, H, Tq, K}).clone(),
                  base.k_pos.expand({B, H, Tq, K}).clone(), base.bias.expand({B, H, Tq, K}).clone(), base.q_scale};
  auto vis = r.visible.accessor<bool, 4>();
  auto qp = r.q_pos.accessor<int64_t, 4>();
  auto kp = r.k_pos.accessor<int64_t, 4>();
  for (int64_t r0 = 0; r0 < Tq; r0 += z.chunk) {
    const int64_t rows = std::min(z.chunk, Tq - r0), c0 = q_offset + r0;
    const int64_t nb = c0 - z.n_local - z.n_init >= 0 ? (c0 - z.n_local - z.n_init) / z.block : 0;
    const auto sel = infllm_selection(q.narrow(2, r0, rows), k, z, nb, enc, seq_len, scale);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = r0; i < r0 + rows; ++i) {
          const int64_t p = q_offset + i;
          for (int64_t j = z.n_init; j <= p - z.n_local; ++j) {
            const int64_t blk = (j - z.n_init) / z.block;
            const auto& chosen = sel[b][h];
            if (blk < nb && !std::binary_search(chosen.begin(), chosen.end(), blk)) continue;  // not retrieved
            vis[b][h][i][j] = true;  // a retrieved block, or the tail not yet in a block
            qp[b][h][i][j] = z.n_local - 1;
            kp[b][h][i][j] = 0;
          }
        }
  }
  return r;
}

}  // namespace lminf
