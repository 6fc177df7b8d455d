#include "attention/variants/dca.h"

#include <algorithm>

#include "attention/variants/band_call.h"
#include "framework/core/error.h"

namespace lminf {

std::vector<std::string> DcaParams::problems() const {
  std::vector<std::string> p;
  if (local_window < 0)
    p.push_back("attention.local_window=" + std::to_string(local_window) + " must be >= 0");
  if (chunk_size <= std::max<int64_t>(local_window, 0))
    p.push_back("attention.chunk_size=" + std::to_string(chunk_size) + " must exceed attention.local_window=" +
                std::to_string(local_window) + " (chunks hold chunk_size - local_window keys)");
  return p;
}

DcaAttention::DcaAttention(const DcaParams& p, BlockwiseOptions tiles) : p_(p), tiles_(tiles) {
  const std::vector<std::string> problems = p_.problems();
  if (!problems.empty()) fail(problems.front());
}

VariantSupport DcaAttention::support() const {
  VariantSupport s;
  s.needs_relative_positions = true;  // positions inside chunks
  s.key_mass = false;  // three views attended apart, merged by log-sum-exp: no per-key mass
  return s;
}

std::vector<std::string> DcaAttention::model_problems(const ModelConfig& model, int) const {
  return sliding_window_problems("chunk_size", p_.chunk_size, model);
}

at::Tensor DcaAttention::forward(const AttentionCall& call) const {
  require_relative_positions(call, name());
  const int64_t K = call.k.size(2), c = p_.chunk_len();
  at::Tensor k_enc = encode_scaled(call.rope, call.k, at::remainder(at::arange(0, K, at::kLong), c), K, 1.0);
  at::Tensor out = at::empty({call.q.size(0), call.q.size(1), call.q.size(2), call.v.size(3)}, call.q.options());
  for (int64_t p0 = call.q_offset; p0 < K;) {
    const int64_t p1 = std::min(K, (p0 / c + 1) * c);  // the rows of chunk p0 / c
    out.narrow(2, p0 - call.q_offset, p1 - p0).copy_(chunk_rows(call, k_enc, p0, p1));
    p0 = p1;
  }
  return out;
}

at::Tensor DcaAttention::chunk_rows(const AttentionCall& call, const at::Tensor& k_enc, int64_t p0, int64_t p1) const {
  const int64_t K = call.k.size(2), c = p_.chunk_len(), lw = p_.local_window;
  const int64_t n = p0 / c, s = n * c;  // chunk index and first key
  const int64_t abs0 = call.abs_q_start - call.q_offset;  // absolute position of cache index 0
  const double scale = head_scale(call);
  at::Tensor q = call.q.narrow(2, p0 - call.q_offset, p1 - p0);
  at::Tensor r = at::arange(p0 - s, p1 - s, at::kLong);  // p % c

  // Intra-chunk: keys [s, p1), causal, at the true distance (query at r, key at j - s).
  BandAttentionArgs a;
  a.q_near = encode_scaled(call.rope, q, r, K, scale);
  a.k_near = k_enc.narrow(2, s, p1 - s);
  a.v = call.v.narrow(2, s, p1 - s);
  a.q_offset = p0 - s;
  a.opts = tiles_;
  a.want_lse = n >= 1;
  a.report = TileReport{call.observers, call.layer, abs0 + s, call.head_offset};
  if (call.alibi_slopes.defined()) a.alibi = AlibiBias{call.alibi_slopes, r, true, {}};
  BandAttentionResult res = band_attention(a);

  // The earlier chunks: every key visible, query at one position per row (successive) or per view (inter).
  auto view = [&](const at::Tensor& q_pos, int64_t k0, int64_t nk) {
    RectangleAttentionArgs v;
    v.q = encode_scaled(call.rope, q, q_pos, K, scale);
    v.k = k_enc.narrow(2, k0, nk);
    v.v = call.v.narrow(2, k0, nk);
    v.alibi = alibi_far(call.alibi_slopes, q_pos, at::remainder(at::arange(k0, k0 + nk, at::kLong), c));
    v.opts = tiles_;
    v.report = TileReport{call.observers, call.layer, abs0, call.head_offset};
    v.q_start_abs = abs0 + p0;
    v.k_start_abs = abs0 + k0;
    return rectangle_attention(v);
  };
  if (n >= 1) res = merge_attention(res, view(c + r.clamp_max(lw), s - c, c));
  if (n >= 2) res = merge_attention(res, view(at::full({1}, c + std::min(c - 1, lw), at::kLong), 0, s - c));
  return res.out;
}

}  // namespace lminf
