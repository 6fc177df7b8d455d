// The "distance limit only" ablation of LM-Infinite (spec sections 2.3, 2.4): every earlier key stays
// visible, at effective distance min(d, D): keys nearer than D at their true distance, the others at
// D (query rotated to D, key unrotated). With triangle_offset tau != 0 the middle keys (j >= G,
// d >= L) get -tau * ln(p - L + 1 - G), the soft alternative to the lambda mask; limit_distance null
// keeps every key at its true distance (vanilla plus the triangle offset).
//
// Unlike the original's detailed path, D != L leaves no zero-logit hole between L and D: only D
// decides the distance. Every key is visible, so compute is O(T^2) (in tiles: memory O(tile)) and
// the cache keeps everything.
#pragma once

#include "attention/attention_spec.h"
#include "attention/attention_variant.h"
#include "attention/kernels/band_attention.h"

namespace lminf {

struct DistanceLimitOptions {
  std::optional<int64_t> limit_distance = 4096;  // D >= 1; nullopt: no ceiling
  double triangle_offset = 0.0;                  // tau
  int64_t local_branch = 4096;                   // L: with tau, the middle starts at distance L
  int64_t global_branch = 10;                    // G: with tau, the middle starts at key G
  BlockwiseOptions tiles;
  static DistanceLimitOptions from_spec(const AttentionSpec& spec);
};

class DistanceLimitAttention final : public AttentionVariant {
 public:
  explicit DistanceLimitAttention(const DistanceLimitOptions& opts);
  explicit DistanceLimitAttention(const AttentionSpec& spec)
      : DistanceLimitAttention(DistanceLimitOptions::from_spec(spec)) {}
  std::string name() const override { return "distance_limit"; }
  VariantSupport support() const override;
  at::Tensor forward(const AttentionCall& call) const override;

 private:
  DistanceLimitOptions opts_;
};

}  // namespace lminf
