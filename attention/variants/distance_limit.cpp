#include "attention/variants/distance_limit.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "attention/variants/band_call.h"
#include "framework/core/error.h"

namespace lminf {

std::vector<std::string> DistanceLimitParams::problems() const {
  std::vector<std::string> p = branch_problems();
  if (!std::isfinite(triangle_offset)) p.push_back("attention.triangle_offset must be a finite number");
  return p;
}

DistanceLimitOptions DistanceLimitOptions::from(const DistanceLimitParams& p, BlockwiseOptions tiles) {
  return DistanceLimitOptions{p.limit(), p.triangle_offset, p.local_branch, p.global_branch, tiles};
}

DistanceLimitAttention::DistanceLimitAttention(const DistanceLimitOptions& opts) : opts_(opts) {
  if (opts_.limit_distance && *opts_.limit_distance < 1)
    fail("attention.limit_distance=", *opts_.limit_distance, " must be > 0 (or null for no ceiling)");
  if (!std::isfinite(opts_.triangle_offset)) fail("attention.triangle_offset must be finite");
  if (opts_.triangle_offset != 0.0) {
    if (opts_.local_branch < 1) fail("attention.local_branch=", opts_.local_branch, " must be > 0");
    if (opts_.global_branch < 0) fail("attention.global_branch=", opts_.global_branch, " must be >= 0");
  }
}

VariantSupport DistanceLimitAttention::support() const {
  VariantSupport s;
  s.needs_relative_positions = true;  // far keys seen at distance D
  return s;
}

std::vector<std::string> DistanceLimitAttention::model_problems(const ModelConfig& model, int) const {
  if (!model.sliding_window) return {};
  const std::string w = std::to_string(*model.sliding_window);
  if (!opts_.limit_distance)
    return {"attention.limit_distance: null keeps every key at its true distance, beyond the model's sliding_window (" +
            w + "); set a limit <= " + w};
  return sliding_window_problems("limit_distance", *opts_.limit_distance, model);
}

at::Tensor DistanceLimitAttention::forward(const AttentionCall& call) const {
  require_relative_positions(call, name());
  const int64_t Tq = call.q.size(2), K = call.k.size(2);
  const RotaryEmbedding* rope = call.rope;  // null: ALiBi
  const double scale = 1.0 / std::sqrt(static_cast<double>(call.q.size(3)));  // folded into the queries

  BandAttentionArgs a = band_call_args(call, opts_.limit_distance, opts_.tiles);  // near: d < D (nullopt: every key)
  at::Tensor q_pos = at::arange(call.q_offset, K, at::kLong);
  a.q_near = encode_scaled(rope, call.q, q_pos, K, scale);
  if (call.alibi_slopes.defined()) a.alibi = AlibiBias{call.alibi_slopes, q_pos, true, {}};
  a.k_near = encode_scaled(rope, call.k.narrow(2, a.near_start, K - a.near_start),
                           at::arange(a.near_start, K, at::kLong), K, 1.0);
  if (a.window && call.q_offset + Tq - 1 >= *a.window) {
    // Far: every key at distance >= D, seen at D (the row's last far key is p - D).
    const int64_t d_eff = std::min(*a.window, K - 1);
    at::Tensor at_d = at::full({1}, d_eff, at::kLong);
    a.q_far = encode_scaled(rope, call.q, at_d, K, scale);
    a.k_far = call.k.narrow(2, 0, K - *a.window);  // unrotated
    a.alibi = alibi_far(call.alibi_slopes, at_d, /*far_k_at_index=*/false);
  }
  if (opts_.triangle_offset != 0.0)
    a.triangle = TriangleBias{opts_.triangle_offset, opts_.local_branch, opts_.global_branch};
  return band_call_output(call, band_attention(a));
}

}  // namespace lminf
