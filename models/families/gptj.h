// The GPT-J family (model_type gptj, EleutherAI): partial rotary embeddings (the first rotary_dim
// features of each head, interleaved pairs / rotate_every_two), attention and MLP in parallel on one
// LayerNorm (x + attn(ln(x)) + mlp(ln(x))), q/k/v/out without biases, gelu_new MLP with biases, an
// untied head with a bias. Tensor-parallel: the attention output and the MLP output are both
// row-parallel partial sums, so one all-reduce serves both and their biases are added once.
#pragma once

#include <vector>

#include "framework/io/checkpoint.h"
#include "framework/transformer/rope.h"
#include "models/causal_lm.h"
#include "models/families/family_common.h"
#include "parallel/shard.h"

namespace lminf {

struct GptjLayer {
  at::Tensor ln_w, ln_b;      // [hidden]
  at::Tensor wq, wk, wv;      // [H_local * D, hidden] (column-parallel)
  at::Tensor wo;              // [hidden, H_local * D] (row-parallel)
  at::Tensor w_in, b_in;      // [I_local, hidden], [I_local] (column-parallel)
  at::Tensor w_out, b_out;    // [hidden, I_local] (row-parallel), [hidden] (added once)
};

class GptjModel final : public FamilyModel {
 public:
  GptjModel(Checkpoint& ckpt, const ModelConfig& config, const LoadOptions& opts);

  at::Device device() const override { return wte_.device(); }
  at::Tensor forward(const at::Tensor& ids, KVCache* cache, const ForwardContext& ctx) override;
  at::Tensor logits(const at::Tensor& hidden) override;
  at::Tensor token_nll(const at::Tensor& hidden, const at::Tensor& targets) override;
  int64_t weight_bytes() const override;
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() override;

 private:
  at::Tensor activation(const at::Tensor& x) const;

  RotaryEmbedding rope_;     // rotary_dim features, interleaved layout
  at::Tensor wte_;           // [V_local, hidden] (vocab-parallel)
  at::Tensor ln_f_w_, ln_f_b_;
  at::Tensor lm_head_w_;     // [V_local, hidden] (vocab-parallel)
  at::Tensor lm_head_b_;     // [V_local]
  std::vector<GptjLayer> layers_;
};

}  // namespace lminf
