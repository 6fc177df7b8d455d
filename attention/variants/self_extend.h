// Self-Extend (Jin et al., "LLM Maybe LongLM: Self-Extend LLM Context Window Without Tuning", 2024;
// reference implementation github.com/datamllab/LongLM). The query at cache index p sees every
// earlier key j, d = p - j:
//   - d < W (neighbor_window): at the true distance (query at p, key at j);
//   - d >= W: at grouped positions, the query at p / G + W - W / G, the key at j / G (G = group_size,
//     integer division), so the distance is p / G - j / G + W - W / G.
// Prefill, chunks and decoded tokens follow the same per-row rule (the reference's decode path
// computes exactly these distances). The band kernel does the two sets: the near band of W keys and
// the far keys [0, K - W) with their own query and key rotations; every key is visible, so compute is
// O(T^2) (memory O(tile)) and the cache keeps everything.
#pragma once

#include <string>
#include <vector>

#include "attention/attention_variant.h"
#include "attention/kernels/blockwise.h"

namespace lminf {

struct SelfExtendParams {
  int64_t group_size = 8;          // G_s
  int64_t neighbor_window = 1024;  // W

  template <class V>
  void visit(V& v) {
    v("group_size", group_size,
      "G_s: beyond the neighbor window, queries and keys sit at their positions divided by G_s (floor), so "
      "distances shrink about G_s-fold");
    v("neighbor_window", neighbor_window,
      "W: keys at distance d < W at their true distance; beyond, grouped positions (query p/G_s + W - W/G_s, "
      "key j/G_s)");
  }
  std::vector<std::string> problems() const;
};

class SelfExtendAttention final : public AttentionVariant {
 public:
  SelfExtendAttention(const SelfExtendParams& p, BlockwiseOptions tiles);
  std::string name() const override { return "self_extend"; }
  VariantSupport support() const override;
  std::vector<std::string> model_problems(const ModelConfig& model, int tensor_parallel) const override;
  at::Tensor forward(const AttentionCall& call) const override;

 private:
  SelfExtendParams p_;
  BlockwiseOptions tiles_;
};

}  // namespace lminf
