// What the windowed variants (lambda, topk, streaming, distance_limit) share before their own
// position rules: the check that the model gives relative positions, and the band kernel's
// arguments taken from the call.
#pragma once

#include <optional>
#include <string>

#include "attention/attention_variant.h"
#include "attention/kernels/band_attention.h"

namespace lminf {

// Fails (naming the variant) when the call has neither rotary embeddings nor ALiBi slopes: the
// variant moves keys to other distances, which only a relative position encoding can express.
void require_relative_positions(const AttentionCall& call, const std::string& variant);

// The call's values, cache offset, tiles and observers, with a near band of `window` keys starting at
// cache index max(0, q_offset - window + 1) (nullopt: every earlier key near, from index 0). The
// variant fills in the encoded queries and keys, and its far branch.
// The attention mass the call asks for (AttentionCall::key_mass) is asked of the kernel.
BandAttentionArgs band_call_args(const AttentionCall& call, std::optional<int64_t> window, const BlockwiseOptions& tiles);

// band_call_args with the near branch filled in: the queries and the band's keys encoded at their
// cache index (queries times `scale`), and under ALiBi the near bias. The variant adds its far branch.
BandAttentionArgs near_band_args(const AttentionCall& call, int64_t window, const BlockwiseOptions& tiles, double scale);

// 1 / sqrt(head_dim) of the call's queries.
double head_scale(const AttentionCall& call);
// r.out, after handing r.key_mass to the call's KeyMass when it asked for one.
at::Tensor band_call_output(const AttentionCall& call, BandAttentionResult r);

}  // namespace lminf
