// StreamingLLM (Xiao et al., ICLR 2024): attention sinks plus a recent window, positions re-indexed
// inside the cache. The query at cache index p sees the keys at distance d = p - j < R (recent_size,
// the query included) at their true distance, and each sink j < S (start_size) further away at
// distance min(p, S + R - 1) - j: the distance it has once the sinks and the window are packed into
// one contiguous cache of S + R entries, the query last. So a decoded token sees exactly what
// StreamingLLM's rolling cache holds, and chunks and one long prefill give the same result.
//
// The cache keeps the first S and the last R - 1 pre-RoPE keys (HeadTailPolicy): flat memory.
#pragma once

#include <string>
#include <vector>

#include "attention/attention_variant.h"
#include "attention/kernels/band_attention.h"

namespace lminf {

// The attention.* keys of streaming.
struct StreamingParams {
  int64_t start_size = 4;      // attention sinks: the first tokens of the stream
  int64_t recent_size = 2000;  // recent window, the query included

  template <class V>
  void visit(V& v) {
    v("start_size", start_size, "attention sinks: the first start_size tokens of the stream");
    v("recent_size", recent_size, "recent window, the query included; positions are re-indexed inside sinks + window");
  }
  std::vector<std::string> problems() const;
};

struct StreamingOptions {
  int64_t start_size = 4;      // S >= 0
  int64_t recent_size = 2000;  // R >= 1
  BlockwiseOptions tiles;
};

class StreamingAttention final : public AttentionVariant {
 public:
  explicit StreamingAttention(const StreamingOptions& opts);
  StreamingAttention(const StreamingParams& p, BlockwiseOptions tiles)
      : StreamingAttention(StreamingOptions{p.start_size, p.recent_size, tiles}) {}
  std::string name() const override { return "streaming"; }
  VariantSupport support() const override;
  std::vector<std::string> model_problems(const ModelConfig& model, int tensor_parallel) const override;
  at::Tensor forward(const AttentionCall& call) const override;
  std::shared_ptr<const CachePolicy> cache_policy() const override;

 private:
  StreamingOptions opts_;
};

}  // namespace lminf
