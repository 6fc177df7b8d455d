#include "attention/variants/self_extend.h"

#include "attention/kernels/band_attention.h"
#include "attention/variants/band_call.h"
#include "framework/core/error.h"

namespace lminf {

std::vector<std::string> SelfExtendParams::problems() const {
  std::vector<std::string> p;
  if (group_size < 1)
    p.push_back("attention.group_size=" + std::to_string(group_size) +
                " must be >= 1 (1 keeps every distance; Self-Extend uses 2 to 16)");
  if (neighbor_window < 1)
    p.push_back("attention.neighbor_window=" + std::to_string(neighbor_window) +
                " must be >= 1 (the keys nearer than it keep their true distance)");
  return p;
}

SelfExtendAttention::SelfExtendAttention(const SelfExtendParams& p, BlockwiseOptions tiles) : p_(p), tiles_(tiles) {
  const std::vector<std::string> problems = p_.problems();
  if (!problems.empty()) fail(problems.front());
}

VariantSupport SelfExtendAttention::support() const {
  VariantSupport s;
  s.needs_relative_positions = true;  // far keys at grouped positions
  return s;
}

std::vector<std::string> SelfExtendAttention::model_problems(const ModelConfig& model, int) const {
  return sliding_window_problems("neighbor_window", p_.neighbor_window, model);
}

at::Tensor SelfExtendAttention::forward(const AttentionCall& call) const {
  require_relative_positions(call, name());
  const int64_t Tq = call.q.size(2), K = call.k.size(2);
  const int64_t G = p_.group_size, W = p_.neighbor_window;
  const double scale = head_scale(call);
  BandAttentionArgs a = near_band_args(call, W, tiles_, scale);  // d < W: true distance
  if (call.q_offset + Tq - 1 >= W) {
    // Far: the keys [0, K - W) that are at least W from some query, at grouped positions.
    const int64_t F = K - W;
    at::Tensor far_q = at::div(at::arange(call.q_offset, K, at::kLong), G, "floor") + (W - W / G);
    at::Tensor far_k = at::div(at::arange(0, F, at::kLong), G, "floor");
    a.q_far = encode_scaled(call.rope, call.q, far_q, K, scale);
    a.k_far = encode_scaled(call.rope, call.k.narrow(2, 0, F), far_k, K, 1.0);
    a.alibi = alibi_far(call.alibi_slopes, far_q, far_k);
  }
  return band_call_output(call, band_attention(a));
}

}  // namespace lminf
