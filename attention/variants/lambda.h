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

#include "attention/attention_spec.h"
#include "attention/attention_variant.h"
#include "attention/kernels/band_attention.h"

namespace lminf {

struct LambdaOptions {
  int64_t local_branch = 4096;                   // L >= 1
  int64_t global_branch = 10;                    // G >= 0
  std::optional<int64_t> limit_distance = 4096;  // D >= 1; nullopt: far starting tokens at their true distance
  BlockwiseOptions tiles;

  static LambdaOptions from_spec(const AttentionSpec& spec);
};

class LambdaAttention : public AttentionVariant {
 public:
  explicit LambdaAttention(const LambdaOptions& opts);
  explicit LambdaAttention(const AttentionSpec& spec) : LambdaAttention(LambdaOptions::from_spec(spec)) {}
  std::string name() const override { return "lambda"; }
  VariantSupport support() const override;
  at::Tensor forward(const AttentionCall& call) const override { return attend(call, false).out; }
  std::shared_ptr<const CachePolicy> cache_policy() const override;

  // The output, with each row's log-sum-exp when asked (for variants that add keys: topk).
  BandAttentionResult attend(const AttentionCall& call, bool want_lse) const;
  const LambdaOptions& options() const { return opts_; }

 private:
  LambdaOptions opts_;
};

}  // namespace lminf
