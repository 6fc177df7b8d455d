#include "attention/variants/streaming.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "attention/variants/band_call.h"
#include "framework/core/error.h"

namespace lminf {

std::vector<std::string> StreamingParams::problems() const {
  std::vector<std::string> p;
  if (start_size < 0)
    p.push_back("attention.start_size=" + std::to_string(start_size) + " must be >= 0 (0: a plain sliding window)");
  if (recent_size <= 0)
    p.push_back("attention.recent_size=" + std::to_string(recent_size) + " must be > 0 (the window includes the query)");
  return p;
}

StreamingAttention::StreamingAttention(const StreamingOptions& opts) : opts_(opts) {
  if (opts_.start_size < 0) fail("attention.start_size=", opts_.start_size, " must be >= 0");
  if (opts_.recent_size < 1)
    fail("attention.recent_size=", opts_.recent_size, " must be > 0 (the window includes the query itself)");
}

VariantSupport StreamingAttention::support() const {
  VariantSupport s;
  s.needs_relative_positions = true;  // positions re-indexed inside the cache
  return s;
}

std::vector<std::string> StreamingAttention::model_problems(const ModelConfig& model, int) const {
  return sliding_window_problems("recent_size", opts_.recent_size, model);
}

std::shared_ptr<const CachePolicy> StreamingAttention::cache_policy() const {
  // The next query needs the last R - 1 keys before it (plus itself) and the sinks.
  return std::make_shared<HeadTailPolicy>(opts_.start_size, opts_.recent_size - 1);
}

at::Tensor StreamingAttention::forward(const AttentionCall& call) const {
  require_relative_positions(call, name());
  const int64_t Tq = call.q.size(2), K = call.k.size(2);
  const int64_t S = opts_.start_size, R = opts_.recent_size;
  const RotaryEmbedding* rope = call.rope;  // null: ALiBi
  const double scale = 1.0 / std::sqrt(static_cast<double>(call.q.size(3)));  // folded into the queries

  BandAttentionArgs a = band_call_args(call, R, opts_.tiles);
  at::Tensor q_pos = at::arange(call.q_offset, K, at::kLong);
  a.q_near = encode_scaled(rope, call.q, q_pos, K, scale);
  if (call.alibi_slopes.defined()) a.alibi = AlibiBias{call.alibi_slopes, q_pos, true, {}};
  a.k_near = encode_scaled(rope, call.k.narrow(2, a.near_start, K - a.near_start),
                           at::arange(a.near_start, K, at::kLong), K, 1.0);
  const int64_t F = std::min(S, K);
  if (F > 0 && call.q_offset + Tq - 1 >= R) {
    // Sinks at their cache index; each query at its position in the packed sinks + window cache.
    at::Tensor far_pos = q_pos.clamp_max(S + R - 1);
    a.q_far = encode_scaled(rope, call.q, far_pos, K, scale);
    a.k_far = encode_scaled(rope, call.k.narrow(2, 0, F), at::arange(0, F, at::kLong), K, 1.0);
    a.alibi = alibi_far(call.alibi_slopes, far_pos, /*far_k_at_index=*/true);
  }
  return band_call_output(call, band_attention(a));
}

}  // namespace lminf
