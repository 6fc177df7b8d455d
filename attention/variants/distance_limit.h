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

#include <optional>
#include <string>
#include <vector>

#include "attention/attention_variant.h"
#include "attention/kernels/band_attention.h"
#include "attention/variants/lambda.h"  // BranchKeys

namespace lminf {

// The attention.* keys of distance_limit (spec section 2.3).
// L and G place the middle for triangle_offset; D is every key's distance ceiling (BranchKeys).
struct DistanceLimitParams : BranchKeys {
  double triangle_offset = 0.0;  // tau: middle logits (j >= G, d >= L) get -tau * ln(p - L + 1 - G)

  template <class V>
  void visit(V& v) {
    v("local_branch", local_branch,
      "L: with triangle_offset, the middle (keys at distance >= L) starts here; limit_distance 0 means L");
    v("global_branch", global_branch, "G: with triangle_offset, keys j < G are not middle keys");
    v("limit_distance", limit_distance,
      "D: every key at distance min(d, D); 0 = local_branch; null = no ceiling (every key at its true distance)");
    v("triangle_offset", triangle_offset,
      "tau: logits of middle keys (j >= G, d >= L) get -tau * ln(p - L + 1 - G), so the middle weighs like "
      "n_mid^-tau of its softmax mass; 0 = off");
  }
  std::vector<std::string> problems() const;
};

struct DistanceLimitOptions {
  std::optional<int64_t> limit_distance = 4096;  // D >= 1; nullopt: no ceiling
  double triangle_offset = 0.0;                  // tau
  int64_t local_branch = 4096;                   // L: with tau, the middle starts at distance L
  int64_t global_branch = 10;                    // G: with tau, the middle starts at key G
  BlockwiseOptions tiles;
  static DistanceLimitOptions from(const DistanceLimitParams& p, BlockwiseOptions tiles);
};

class DistanceLimitAttention final : public AttentionVariant {
 public:
  explicit DistanceLimitAttention(const DistanceLimitOptions& opts);
  DistanceLimitAttention(const DistanceLimitParams& p, BlockwiseOptions tiles)
      : DistanceLimitAttention(DistanceLimitOptions::from(p, tiles)) {}
  std::string name() const override { return "distance_limit"; }
  VariantSupport support() const override;
  std::vector<std::string> model_problems(const ModelConfig& model, int tensor_parallel) const override;
  at::Tensor forward(const AttentionCall& call) const override;

 private:
  DistanceLimitOptions opts_;
};

}  // namespace lminf
