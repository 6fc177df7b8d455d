// Lambda attention with top-k retrieval of middle tokens (spec section 2.5). Every row is lambda
// attention, except the LAST query row of each forward call (the last prompt token at prefill, each
// generated token when decoding) in layers [from, to): per (sequence, head) it also sees the k middle
// keys (j >= G, d >= L) with the highest logit <R(insert_at) q, k_j> / sqrt(h), each at distance
// insert_at, when the middle holds at least k keys. The two parts merge by their log-sum-exps.
//
// Retrieval needs the middle, so the cache keeps everything (KeepAllPolicy, memory O(stream)) and the
// last row scores all K - L - G middle keys: O(K) per decoded token, as in the original.
#pragma once

#include "attention/variants/lambda.h"

namespace lminf {

// The attention.* keys of topk: lambda's, plus the retrieval.
struct TopKParams {
  LambdaParams lambda;
  int64_t top_k = 5;               // middle keys retrieved per (sequence, head) on the last query row
  int64_t top_k_from_layer = 4;    // first layer (0-based, inclusive) that retrieves
  int64_t top_k_to_layer = 1000;   // last layer (exclusive)
  int64_t top_k_insert_at = 2048;  // distance at which middle keys are scored and seen

  std::optional<int64_t> local_window() const { return lambda.local_branch; }
  template <class V>
  void visit(V& v) {
    lambda.visit(v);
    v("top_k", top_k, "middle keys retrieved per (sequence, head) on the last query row of each forward call");
    v("top_k_from_layer", top_k_from_layer, "first layer (0-based, inclusive) that retrieves middle keys");
    v("top_k_to_layer", top_k_to_layer, "layer where retrieval stops (exclusive)");
    v("top_k_insert_at", top_k_insert_at,
      "distance at which middle keys are scored and seen (query rotated to it, key unrotated)");
  }
  std::vector<std::string> problems() const;
};

struct TopKOptions {
  int64_t k = 5;             // >= 1
  int64_t from_layer = 4;    // inclusive
  int64_t to_layer = 1000;   // exclusive
  int64_t insert_at = 2048;  // >= 0

  static TopKOptions from(const TopKParams& p);
};

class TopKAttention final : public AttentionVariant {
 public:
  TopKAttention(const LambdaOptions& lambda, const TopKOptions& top_k);
  TopKAttention(const TopKParams& p, BlockwiseOptions tiles)
      : TopKAttention(LambdaOptions::from(p.lambda, tiles), TopKOptions::from(p)) {}
  std::string name() const override { return "topk"; }
  // No attention mass: the retrieved keys' probabilities are not part of the kernels' mass.
  VariantSupport support() const override;
  std::vector<std::string> model_problems(const ModelConfig& model, int tensor_parallel) const override;
  at::Tensor forward(const AttentionCall& call) const override;
  std::shared_ptr<const CachePolicy> cache_policy() const override { return std::make_shared<KeepAllPolicy>(); }

 private:
  LambdaAttention lambda_;
  TopKOptions top_k_;
};

}  // namespace lminf
