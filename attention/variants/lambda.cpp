#include "attention/variants/lambda.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "attention/variants/band_call.h"
#include "framework/core/error.h"

namespace lminf {

std::vector<std::string> BranchKeys::branch_problems() const {
  std::vector<std::string> p;
  if (local_branch <= 0)
    p.push_back("attention.local_branch=" + std::to_string(local_branch) +
                " must be > 0 (use attention.variant: vanilla to disable the window)");
  if (global_branch < 0)
    p.push_back("attention.global_branch=" + std::to_string(global_branch) +
                " must be >= 0 (0: no starting tokens, a plain sliding window)");
  if (limit_distance && *limit_distance < 0)
    p.push_back("attention.limit_distance=" + std::to_string(*limit_distance) +
                " must be > 0 (0 or absent: local_branch; null: no distance ceiling)");
  return p;
}

std::vector<std::string> LambdaParams::problems() const {
  return branch_problems();
}

LambdaOptions LambdaOptions::from(const LambdaParams& p, BlockwiseOptions tiles) {
  LambdaOptions o;
  o.local_branch = p.local_branch;
  o.global_branch = p.global_branch;
  o.limit_distance = p.limit();
  o.tiles = tiles;
  return o;
}

LambdaAttention::LambdaAttention(const LambdaOptions& opts) : opts_(opts) {
  if (opts_.local_branch < 1)
    fail("attention.local_branch=", opts_.local_branch,
         " must be > 0 (use attention.variant: vanilla to disable the window)");
  if (opts_.global_branch < 0) fail("attention.global_branch=", opts_.global_branch, " must be >= 0");
  if (opts_.limit_distance && *opts_.limit_distance < 1)
    fail("attention.limit_distance=", *opts_.limit_distance, " must be > 0 (or null for no ceiling)");
}

VariantSupport LambdaAttention::support() const {
  VariantSupport s;
  s.needs_relative_positions = true;  // the global branch is seen at distance D
  return s;
}

std::vector<std::string> LambdaAttention::model_problems(const ModelConfig& model, int) const {
  return sliding_window_problems("local_branch", opts_.local_branch, model);
}

std::shared_ptr<const CachePolicy> LambdaAttention::cache_policy() const {
  return std::make_shared<HeadTailPolicy>(opts_.global_branch, opts_.local_branch);
}

at::Tensor LambdaAttention::forward(const AttentionCall& call) const {
  return band_call_output(call, attend(call, /*want_lse=*/false));
}

BandAttentionResult LambdaAttention::attend(const AttentionCall& call, bool want_lse) const {
  require_relative_positions(call, name());
  const int64_t Tq = call.q.size(2), K = call.k.size(2);
  const int64_t L = opts_.local_branch;
  const double scale = 1.0 / std::sqrt(static_cast<double>(call.q.size(3)));  // folded into the queries

  BandAttentionArgs a = band_call_args(call, L, opts_.tiles);
  a.want_lse = want_lse;
  // Local branch: queries and the keys of the band [q_offset - L + 1, K) at their cache index. A
  // decoded token therefore touches only the last L keys (plus the G starting ones below).
  const RotaryEmbedding* rope = call.rope;  // null: ALiBi, whose distances the kernel adds as biases
  at::Tensor q_pos = at::arange(call.q_offset, K, at::kLong);
  a.q_near = encode_scaled(rope, call.q, q_pos, K, scale);
  a.k_near = encode_scaled(rope, call.k.narrow(2, a.near_start, K - a.near_start),
                           at::arange(a.near_start, K, at::kLong), K, 1.0);
  if (call.alibi_slopes.defined()) a.alibi = AlibiBias{call.alibi_slopes, q_pos, true, {}};
  // Global branch: only when the last query is at least L past the first starting token.
  const int64_t F = std::min(opts_.global_branch, K);
  if (F > 0 && call.q_offset + Tq - 1 >= L) {
    at::Tensor k_start = call.k.narrow(2, 0, F);
    if (opts_.limit_distance) {
      const int64_t d_eff = std::min(*opts_.limit_distance, K - 1);
      at::Tensor at_d = at::full({1}, d_eff, at::kLong);
      a.q_far = encode_scaled(rope, call.q, at_d, K, scale);  // the "stationary" query
      a.k_far = k_start;                                       // unrotated (position 0)
      a.alibi = alibi_far(call.alibi_slopes, at_d, /*far_k_at_index=*/false);  // MPT: bias -m * D_eff
    } else {
      a.q_far = a.q_near;
      a.k_far = encode_scaled(rope, k_start, at::arange(0, F, at::kLong), K, 1.0);
    }
  }
  return band_attention(a);
}

}  // namespace lminf
