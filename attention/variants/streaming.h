// StreamingLLM (Xiao et al., ICLR 2024): attention sinks plus a recent window, positions re-indexed
// inside the cache. The query at cache index p sees the keys at distance d = p - j < R (recent_size,
// the query included) at their true distance, and each sink j < S (start_size) further away at
// distance min(p, S + R - 1) - j: the distance it has once the sinks and the window are packed into
// one contiguous cache of S + R entries, the query last. So a decoded token sees exactly what
// StreamingLLM's rolling cache holds, and chunks and one long prefill give the same result.
//
// The cache keeps the first S and the last R - 1 pre-RoPE keys (HeadTailPolicy): flat memory.
#pragma once

#include "attention/attention_spec.h"
#include "attention/attention_variant.h"
#include "attention/kernels/band_attention.h"

namespace lminf {

struct StreamingOptions {
  int64_t start_size = 4;      // S >= 0
  int64_t recent_size = 2000;  // R >= 1
  BlockwiseOptions tiles;
  static StreamingOptions from_spec(const AttentionSpec& spec);
};

class StreamingAttention final : public AttentionVariant {
 public:
  explicit StreamingAttention(const StreamingOptions& opts);
  explicit StreamingAttention(const AttentionSpec& spec) : StreamingAttention(StreamingOptions::from_spec(spec)) {}
  std::string name() const override { return "streaming"; }
  VariantSupport support() const override;
  at::Tensor forward(const AttentionCall& call) const override;
  std::shared_ptr<const CachePolicy> cache_policy() const override;

 private:
  StreamingOptions opts_;
};

}  // namespace lminf
