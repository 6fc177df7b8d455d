// Dual chunk attention (An et al., "Training-Free Long-Context Scaling of Large Language Models",
// 2024: ChunkLlama; reference implementation github.com/HKUNLP/ChunkLlama, chunkllama_attn_replace.py).
// The cache is cut into chunks of c = chunk_size - local_window keys (the reference's chunk_len); key
// j sits at position j % c. The query at cache index p, r = p % c, sees every earlier key:
//   - intra-chunk, keys of its own chunk (j / c == p / c): the query at r (the true distance);
//   - successive-chunk, keys of the previous chunk: the query at c + min(r, local_window);
//   - inter-chunk, every earlier chunk: the query at c + min(c - 1, local_window);
// so no distance exceeds chunk_size. As in the reference, each view is attended separately and the
// results merged by their log-sum-exps (the reference rounds the merge weights to bfloat16; here they
// stay float32). Prefill, chunks and decoded tokens follow the same per-row rule: each query uses its
// own chunk (the reference's decode path does this for one token; with a cache and several new
// tokens it gives them all the last token's chunks). Compute O(T^2), memory O(tile); the cache keeps
// everything.
#pragma once

#include <string>
#include <vector>

#include "attention/attention_variant.h"
#include "attention/kernels/band_attention.h"

namespace lminf {

struct DcaParams {
  int64_t chunk_size = 3072;   // the reference: 3/4 of the pretraining length
  int64_t local_window = 512;  // the reference: 1/8 of the pretraining length

  template <class V>
  void visit(V& v) {
    v("chunk_size", chunk_size,
      "dual chunk attention: chunks hold chunk_size - local_window keys and no distance exceeds chunk_size "
      "(ChunkLlama: 3/4 of the pretraining length)");
    v("local_window", local_window,
      "dual chunk attention: the successive-chunk view places the query at c + min(p % c, local_window), "
      "c = chunk_size - local_window (ChunkLlama: 1/8 of the pretraining length)");
  }
  std::vector<std::string> problems() const;
  int64_t chunk_len() const { return chunk_size - local_window; }
};

class DcaAttention final : public AttentionVariant {
 public:
  DcaAttention(const DcaParams& p, BlockwiseOptions tiles);
  std::string name() const override { return "dca"; }
  VariantSupport support() const override;
  std::vector<std::string> model_problems(const ModelConfig& model, int tensor_parallel) const override;
  at::Tensor forward(const AttentionCall& call) const override;

 private:
  // The call's rows at cache indices [p0, p1), all in chunk p0 / c, over the three views merged;
  // k_enc: every key encoded at j % c. Returns [B, H, p1 - p0, Dv].
  at::Tensor chunk_rows(const AttentionCall& call, const at::Tensor& k_enc, int64_t p0, int64_t p1) const;

  DcaParams p_;
  BlockwiseOptions tiles_;
};

}  // namespace lminf
