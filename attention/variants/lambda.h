// LM-Infinite's lambda-shaped attention (Han et al., NAACL 2024; spec section 2.1). The query at
// cache index p sees
//   - every key at distance d = p - j < L at its true distance (the local branch), and
//   - each starting token j < G that is further away at distance D_eff = min(D, K-1) (the global
//     branch: query rotated to D_eff, key unrotated), once: a starting token inside the window is
//     seen only through the local branch;
// every other ("middle") key is masked. With limit_distance null the far starting tokens keep their
// true distance (the lambda mask alone).
//
// Prefill and chunks go through band_attention (the band plus G columns, tiled, online softmax);
// a single decoded token reads only the first G and the last L keys. The cache keeps the first G and
// the last L pre-RoPE keys (HeadTailPolicy), renumbered 0..G+L-1 (spec section 2.11), so memory is
// flat for any stream length and chunked streaming equals one long prefill whenever D <= L.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "attention/attention_variant.h"
#include "attention/kernels/band_attention.h"

namespace lminf {

// L, G and D: the keys of LM-Infinite's two branches, read by lambda, topk and distance_limit (each
// with its own help text, in its visit()).
struct BranchKeys {
  int64_t local_branch = 4096;  // L: keys at distance d < L are seen at their true distance
  int64_t global_branch = 10;   // G: starting tokens j < G stay visible beyond the window
  // D. Three states: 0 (the default) = "unset", resolved to local_branch (see limit()); a positive
  // value; YAML null = no distance ceiling (far tokens at their true distance). 0 is kept in the
  // resolved spec, so a written config reads back with the same meaning.
  std::optional<int64_t> limit_distance = 0;

  // D as the variants use it: limit_distance, local_branch when 0, nullopt for null (no ceiling).
  std::optional<int64_t> limit() const {
    if (!limit_distance) return std::nullopt;
    return *limit_distance == 0 ? local_branch : *limit_distance;
  }
  std::optional<int64_t> local_window() const { return local_branch; }
  // The checks of L, G and D, each naming its key and the fix.
  std::vector<std::string> branch_problems() const;
};

// The attention.* keys of lambda (and of topk, which reads them too).
struct LambdaParams : BranchKeys {

  template <class V>
  void visit(V& v) {
    v("local_branch", local_branch,
      "L: keys at distance d < L are seen at their true distance; the model's pretraining length is the "
      "paper's choice (Llama-2: 4096)");
    v("global_branch", global_branch,
      "G: the first G tokens of the stream stay visible at any distance (paper: 10 to 100); 0 gives a plain "
      "sliding window");
    v("limit_distance", limit_distance,
      "D: distance at which far starting tokens are seen, min(D, K-1); 0 = local_branch (the paper's setting); "
      "null = no ceiling (far tokens at their true distance)");
  }
  std::vector<std::string> problems() const;
};

struct LambdaOptions {
  int64_t local_branch = 4096;                   // L >= 1
  int64_t global_branch = 10;                    // G >= 0
  std::optional<int64_t> limit_distance = 4096;  // D >= 1; nullopt: far starting tokens at their true distance
  BlockwiseOptions tiles;

  static LambdaOptions from(const LambdaParams& p, BlockwiseOptions tiles);
};

class LambdaAttention : public AttentionVariant {
 public:
  explicit LambdaAttention(const LambdaOptions& opts);
  LambdaAttention(const LambdaParams& p, BlockwiseOptions tiles) : LambdaAttention(LambdaOptions::from(p, tiles)) {}
  std::string name() const override { return "lambda"; }
  VariantSupport support() const override;
  std::vector<std::string> model_problems(const ModelConfig& model, int tensor_parallel) const override;
  at::Tensor forward(const AttentionCall& call) const override;
  std::shared_ptr<const CachePolicy> cache_policy() const override;

  // The output, with each row's log-sum-exp when asked (for variants that add keys: topk).
  BandAttentionResult attend(const AttentionCall& call, bool want_lse) const;
  const LambdaOptions& options() const { return opts_; }

 private:
  LambdaOptions opts_;
};

}  // namespace lminf
