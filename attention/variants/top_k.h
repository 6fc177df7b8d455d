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

struct TopKOptions {
  int64_t k = 5;             // >= 1
  int64_t from_layer = 4;    // inclusive
  int64_t to_layer = 1000;   // exclusive
  int64_t insert_at = 2048;  // >= 0

  static TopKOptions from_spec(const AttentionSpec& spec);
};

class TopKAttention final : public AttentionVariant {
 public:
  TopKAttention(const LambdaOptions& lambda, const TopKOptions& top_k);
  explicit TopKAttention(const AttentionSpec& spec)
      : TopKAttention(LambdaOptions::from_spec(spec), TopKOptions::from_spec(spec)) {}
  std::string name() const override { return "topk"; }
  VariantSupport support() const override { return lambda_.support(); }
  at::Tensor forward(const AttentionCall& call) const override;
  std::shared_ptr<const CachePolicy> cache_policy() const override { return std::make_shared<KeepAllPolicy>(); }

 private:
  LambdaAttention lambda_;
  TopKOptions top_k_;
};

}  // namespace lminf
