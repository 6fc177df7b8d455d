// InfLLM (Xiao et al. 2024, "InfLLM: Training-Free Long-Context Extrapolation for LLMs with an
// Efficient Context Memory"; reference code github thunlp/InfLLM, inf_llm/attention/context_manager.py).
// The queries of a call are processed in chunks of exc_block_size rows (from the call's first query);
// the query at cache index p of the chunk [c0, c1) sees
//   - every key at distance d = p - j < n_local at its true distance (the local window);
//   - beyond the window (d >= n_local), at the one distance n_local - 1 (query rotated to n_local - 1,
//     key unrotated; ALiBi: bias -m * (n_local - 1)):
//       the attention sinks j < n_init;
//       the memory blocks retrieved for the chunk: the middle [n_init, n_init + nb * block) holds
//       nb = floor((c0 - n_local - n_init) / block) blocks of memory_block_size tokens, and the chunk
//       takes the topk blocks (all when nb <= topk) whose representative key scores highest against the
//       mean of its queries (rotated to n_local - 1), per sequence summed over the heads, or per
//       (sequence, query head) with perhead;
//       the evicted tokens not yet in a block, j >= n_init + nb * block;
//   - nothing else.
// A block's representative key is the mean of its repr_topk representative tokens. The reference
// ranks a block's tokens by the attention they received from the queries of their local window,
// accumulated across calls. lminf's variants are functions of one call (its queries and the cached
// keys), so here a block's tokens are ranked by the dot product of their pre-RoPE key with the
// block's mean key (per kv head): the tokens most typical of the block. With repr_topk equal to
// memory_block_size both are the block's mean key.
//
// Kernels: the local window and the sinks are lambda attention (band_attention, L = n_local,
// G = n_init, D = n_local - 1); each chunk's retrieved blocks and unblocked tail are one dense
// score tile of chunk x (topk x block + block + chunk) per head, merged by log-sum-exp. Retrieval
// needs the whole middle, so the cache keeps everything (memory grows with the stream).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "attention/variants/lambda.h"

namespace lminf {

// The attention.* keys of infllm, named as in the reference's YAML configs (block_size is
// memory_block_size here: attention.block_size is the kernels' query tile).
struct InfLLMParams {
  int64_t n_init = 128;             // attention sinks: the first tokens of the stream
  int64_t n_local = 4096;           // local window: keys at distance < n_local at their true distance
  int64_t memory_block_size = 128;  // tokens per memory block (the reference's block_size)
  int64_t topk = 16;                // memory blocks retrieved per query chunk
  int64_t repr_topk = 4;            // representative tokens per block
  int64_t exc_block_size = 512;     // queries per chunk: retrieval happens once per chunk
  bool perhead = false;             // retrieve per (sequence, query head) instead of per sequence

  std::optional<int64_t> local_window() const { return n_local; }
  template <class V>
  void visit(V& v) {
    v("n_init", n_init, "attention sinks: the first n_init tokens stay visible at distance n_local - 1");
    v("n_local", n_local, "local window: keys at distance < n_local are seen at their true distance");
    v("memory_block_size", memory_block_size,
      "tokens per memory block of the evicted middle (the reference's block_size)");
    v("topk", topk, "memory blocks retrieved per query chunk (all of them while there are at most topk)");
    v("repr_topk", repr_topk, "representative tokens per memory block; their mean key scores the block");
    v("exc_block_size", exc_block_size,
      "queries per chunk (the reference's exc_block_size): each chunk retrieves once; <= n_local");
    v("perhead", perhead,
      "retrieve blocks per (sequence, query head); false: per sequence, by the scores summed over the heads");
  }
  std::vector<std::string> problems() const;
};

class InfLLMAttention final : public AttentionVariant {
 public:
  InfLLMAttention(const InfLLMParams& p, BlockwiseOptions tiles);
  std::string name() const override { return "infllm"; }
  VariantSupport support() const override {
    VariantSupport s = lambda_.support();
    s.key_mass = false;  // the retrieved blocks are attended apart from the band kernel's mass
    return s;
  }
  std::vector<std::string> model_problems(const ModelConfig& model, int tensor_parallel) const override;
  at::Tensor forward(const AttentionCall& call) const override;
  std::shared_ptr<const CachePolicy> cache_policy() const override { return std::make_shared<KeepAllPolicy>(); }

 private:
  // The memory part (retrieved blocks and unblocked tail) of the chunk of `rows` queries starting at
  // query row `row0`; lse -inf on rows that see no memory key; both undefined when no row does.
  BandAttentionResult memory_part(const AttentionCall& call, int64_t row0, int64_t rows, const at::Tensor& repr) const;
  // The retrieved blocks of a chunk: [B, Hkv, u, n] block indices, u = 1 (per sequence) or g (perhead).
  at::Tensor select_blocks(const AttentionCall& call, const at::Tensor& q_far, const at::Tensor& repr,
                           int64_t n_blocks) const;
  void report_memory(const AttentionCall& call, int64_t row0, const at::Tensor& s, const at::Tensor& pos,
                     int64_t k_hi) const;

  InfLLMParams p_;
  BlockwiseOptions tiles_;
  LambdaAttention lambda_;  // the local window and the sinks
};

}  // namespace lminf
