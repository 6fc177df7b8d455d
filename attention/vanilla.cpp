#include "attention/vanilla.h"

#include <cmath>

#include "framework/error.h"

namespace lminf {

VanillaAttention::VanillaAttention(const AttentionSpec& spec) {
  opts_.block_q = spec.block_size;
  opts_.block_k = spec.key_block_size;
}

at::Tensor VanillaAttention::forward(const AttentionCall& call) const {
  const int64_t Tq = call.q.size(2), K = call.k.size(2);
  at::Tensor q = call.q, k = call.k;
  if (call.rope) {
    // Keys at their cache index, queries after the cached entries; positions computed in float32.
    const int64_t seq_len = K;
    at::Tensor kpos = at::arange(0, K, call.k.options().dtype(at::kLong));
    auto cs = call.rope->cos_sin(kpos, seq_len);
    k = RotaryEmbedding::apply(k, cs.first, cs.second);
    q = RotaryEmbedding::apply(q, cs.first.narrow(0, call.q_offset, Tq), cs.second.narrow(0, call.q_offset, Tq));
  }
  TileReport report{call.observers, call.layer, call.abs_q_start - call.q_offset, call.head_offset};
  const double scale = 1.0 / std::sqrt(static_cast<double>(call.q.size(3)));
  return blockwise_causal_attention(q, k, call.v, call.q_offset, call.sliding_window, scale, opts_, report);
}

}  // namespace lminf
