#include "attention/variants/vanilla.h"

#include <cmath>

#include "attention/kernels/band_attention.h"
#include "attention/variants/band_call.h"
#include "framework/core/error.h"

namespace lminf {

at::Tensor VanillaAttention::forward(const AttentionCall& call) const {
  const int64_t Tq = call.q.size(2), K = call.k.size(2);
  at::Tensor q = call.q, k = call.k;
  TileReport report{call.observers, call.layer, call.abs_q_start - call.q_offset, call.head_offset};
  const double scale = 1.0 / std::sqrt(static_cast<double>(call.q.size(3)));
  if (call.alibi_slopes.defined()) {
    // ALiBi: the band kernel with every earlier key near (or the model's window), biased -m * d.
    BandAttentionArgs a;
    a.q_near = encode_scaled(nullptr, q, at::Tensor(), K, scale);
    a.k_near = k;
    a.v = call.v;
    a.q_offset = call.q_offset;
    a.window = call.sliding_window;
    a.near_start = 0;
    a.opts = opts_;
    a.report = report;
    a.alibi = AlibiBias{call.alibi_slopes, at::arange(call.q_offset, K, at::kLong), true, {}};
    a.mass_rows = call.key_mass ? call.key_mass->rows : 0;
    return band_call_output(call, band_attention(a));
  }
  if (call.rope && call.cache && !call.rope->length_dependent()) {
    // Keys at their cache index, rotated once when they entered the cache; queries after them.
    k = call.cache->rotated_keys(*call.rope);
    at::Tensor qpos = at::arange(call.q_offset, K, call.k.options().dtype(at::kLong));
    auto cs = call.rope->cos_sin(qpos, K);
    q = call.rope->apply_rotation(q, cs.first, cs.second);
  } else if (call.rope) {
    // The same without a cache (or with dynamic NTK, whose rotations change with the length).
    const int64_t seq_len = K;
    at::Tensor kpos = at::arange(0, K, call.k.options().dtype(at::kLong));
    auto cs = call.rope->cos_sin(kpos, seq_len);
    k = call.rope->apply_rotation(k, cs.first, cs.second);
    q = call.rope->apply_rotation(q, cs.first.narrow(0, call.q_offset, Tq), cs.second.narrow(0, call.q_offset, Tq));
  }
  const int64_t mass_rows = call.key_mass ? call.key_mass->rows : 0;
  BlockwiseResult r =
      blockwise_causal_attention_mass(q, k, call.v, call.q_offset, call.sliding_window, scale, opts_, report, mass_rows);
  if (mass_rows > 0) call.key_mass->sum = std::move(r.key_mass);
  return r.out;
}

}  // namespace lminf
