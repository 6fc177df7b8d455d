// ReRoPE and Leaky ReRoPE (Su, "Rectified Rotary Position Embeddings", 2023; reference implementation
// github.com/bojone/rerope, rerope_patch.py and leaky_rerope_patch.py). Every earlier key is visible;
// the query at cache index p sees key j, d = p - j, at
//   - d < w (window): the true distance;
//   - d >= w: distance w (ReRoPE: query at w, key unrotated), or with leaky_k = k > 1 distance
//     w + (d - w) / k (Leaky ReRoPE: query at (p + w (k - 1)) / k, key at j / k; fractional
//     positions, as the reference's linearly scaled rotary embedding computes them).
// log_scale_base N multiplies every logit's q . k of row p by max(1, ln(p + 1) / ln(N)) (the
// reference scales the queries so, N = its training_length). Non-leaky ReRoPE without log scaling is
// distance_limit with limit_distance = w. Prefill and decode follow the same per-row rule (the
// reference's decode path clips d at w, or maps it through the scaled table, identically). The band
// kernel does the two sets: every key is visible, so compute is O(T^2) (memory O(tile)) and the
// cache keeps everything.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "attention/attention_variant.h"
#include "attention/kernels/blockwise.h"

namespace lminf {

struct ReropeParams {
  int64_t window = 512;                  // w
  std::optional<double> leaky_k;         // k > 1: Leaky ReRoPE; null: ReRoPE
  std::optional<int64_t> log_scale_base;  // N >= 2: log-length query scaling; null: none

  template <class V>
  void visit(V& v) {
    v("window", window, "w: keys at distance d < w at their true distance; beyond, distance w (or leaky)");
    v("leaky_k", leaky_k,
      "k > 1: Leaky ReRoPE, distances d >= w seen at w + (d - w)/k (fractional positions); null: ReRoPE (every "
      "far key at w)");
    v("log_scale_base", log_scale_base,
      "N: q.k of the query at position p times max(1, ln(p+1)/ln(N)), the reference's log-length scaling with "
      "N = the training length (4096 for Llama-2); null: no scaling");
  }
  std::vector<std::string> problems() const;
};

class ReropeAttention final : public AttentionVariant {
 public:
  ReropeAttention(const ReropeParams& p, BlockwiseOptions tiles);
  std::string name() const override { return "rerope"; }
  VariantSupport support() const override;
  std::vector<std::string> model_problems(const ModelConfig& model, int tensor_parallel) const override;
  at::Tensor forward(const AttentionCall& call) const override;

 private:
  ReropeParams p_;
  BlockwiseOptions tiles_;
};

}  // namespace lminf
