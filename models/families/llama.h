// The Llama family (model_type llama, mistral): RMSNorm, rotary embeddings (rotate-half, HF
// rope_scaling), grouped-query attention through a pluggable AttentionVariant, SwiGLU MLP, tied or
// untied head. Tensor-parallel: heads, MLP columns and the vocabulary split Megatron-style.
#pragma once

#include <vector>

#include "framework/io/checkpoint.h"
#include "framework/transformer/rope.h"
#include "models/causal_lm.h"
#include "models/families/family_common.h"
#include "parallel/shard.h"

namespace lminf {

struct LlamaLayer {
  at::Tensor attn_norm;              // [hidden]
  at::Tensor wq, wk, wv;             // [H_local*D, hidden], [Hkv_local*D, hidden] (column-parallel)
  at::Tensor bq, bk, bv;             // [H_local*D] ... or undefined (attention_bias)
  at::Tensor wo;                     // [hidden, H_local*D] (row-parallel)
  at::Tensor bo;                     // [hidden] or undefined
  at::Tensor mlp_norm;               // [hidden]
  at::Tensor w_gate, w_up;           // [I_local, hidden] (column-parallel; I_local = I/tp, +1 on the first I%tp ranks)
  at::Tensor b_gate, b_up;           // [I_local] or undefined (mlp_bias)
  at::Tensor w_down;                 // [hidden, I_local] (row-parallel)
  at::Tensor b_down;                 // [hidden] or undefined
};

class LlamaModel final : public FamilyModel {
 public:
  LlamaModel(Checkpoint& ckpt, const ModelConfig& config, const LoadOptions& opts);

  at::Device device() const override { return embed_.device(); }
  at::Tensor forward(const at::Tensor& ids, KVCache* cache, const ForwardContext& ctx) override;
  at::Tensor logits(const at::Tensor& hidden) override;
  at::Tensor token_nll(const at::Tensor& hidden, const at::Tensor& targets) override;
  int64_t weight_bytes() const override;
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() override;

 private:
  at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w) const;

  RotaryEmbedding rope_;
  at::Tensor embed_;    // [V_local, hidden] (vocab-parallel)
  at::Tensor norm_;     // [hidden]
  at::Tensor lm_head_;  // [V_local, hidden] (vocab-parallel; the embedding when tied)
  std::vector<LlamaLayer> layers_;
};

}  // namespace lminf
