#include "attention/variants/band_call.h"

#include <algorithm>
#include <cmath>

#include "framework/core/error.h"

namespace lminf {

void require_relative_positions(const AttentionCall& call, const std::string& variant) {
  if (!call.rope && !call.alibi_slopes.defined())
    fail("attention.variant ", variant, " needs rotary embeddings or ALiBi biases");
}

BandAttentionArgs band_call_args(const AttentionCall& call, std::optional<int64_t> window, const BlockwiseOptions& tiles) {
  BandAttentionArgs a;
  a.q_offset = call.q_offset;
  a.window = window;
  a.v = call.v;
  a.opts = tiles;
  a.report = TileReport{call.observers, call.layer, call.abs_q_start - call.q_offset, call.head_offset};
  a.near_start = window ? std::max<int64_t>(0, call.q_offset - *window + 1) : 0;
  a.mass_rows = call.key_mass ? call.key_mass->rows : 0;
  return a;
}

BandAttentionArgs near_band_args(const AttentionCall& call, int64_t window, const BlockwiseOptions& tiles, double scale) {
  const int64_t K = call.k.size(2);
  BandAttentionArgs a = band_call_args(call, window, tiles);
  at::Tensor q_pos = at::arange(call.q_offset, K, at::kLong);
  a.q_near = encode_scaled(call.rope, call.q, q_pos, K, scale);
  a.k_near = encode_scaled(call.rope, call.k.narrow(2, a.near_start, K - a.near_start),
                           at::arange(a.near_start, K, at::kLong), K, 1.0);
  if (call.alibi_slopes.defined()) a.alibi = AlibiBias{call.alibi_slopes, q_pos, true, {}};
  return a;
}

double head_scale(const AttentionCall& call) { return 1.0 / std::sqrt(static_cast<double>(call.q.size(3))); }

at::Tensor band_call_output(const AttentionCall& call, BandAttentionResult r) {
  if (call.key_mass && call.key_mass->rows > 0) call.key_mass->sum = std::move(r.key_mass);
  return std::move(r.out);
}

}  // namespace lminf
