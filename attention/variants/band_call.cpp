#include "attention/variants/band_call.h"

#include <algorithm>

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

at::Tensor band_call_output(const AttentionCall& call, BandAttentionResult r) {
  if (call.key_mass && call.key_mass->rows > 0) call.key_mass->sum = std::move(r.key_mass);
  return std::move(r.out);
}

}  // namespace lminf
