// The MPT family (model_type mpt, MosaicML): ALiBi attention biases (no rotary), LayerNorm (no bias
// when no_bias), a fused Wqkv projection (optionally clamped to +-clip_qkv), exact-GELU MLP, head
// tied to the embedding. Tensor-parallel like Llama: Wqkv's q, k and v row blocks sliced per head
// group on load (column-parallel), out_proj and down_proj row-parallel, the vocabulary split.
#pragma once

#include <vector>

#include "framework/io/checkpoint.h"
#include "models/causal_lm.h"
#include "models/families/family_common.h"
#include "parallel/shard.h"

namespace lminf {

struct MptLayer {
  at::Tensor norm_1_w, norm_1_b;  // [hidden]; bias undefined when no_bias
  at::Tensor wqkv;                // [3 * H_local * D, hidden]: this rank's q, k, v rows (column-parallel)
  at::Tensor bqkv;                // [3 * H_local * D] or undefined
  at::Tensor wo;                  // [hidden, H_local * D] (row-parallel)
  at::Tensor bo;                  // [hidden] or undefined
  at::Tensor norm_2_w, norm_2_b;  // [hidden]
  at::Tensor w_up, b_up;          // [I_local, hidden], [I_local] (column-parallel)
  at::Tensor w_down, b_down;      // [hidden, I_local], [hidden] (row-parallel)
};

class MptModel final : public FamilyModel {
 public:
  MptModel(Checkpoint& ckpt, const ModelConfig& config, const LoadOptions& opts);

  at::Device device() const override { return wte_.device(); }
  at::Tensor forward(const at::Tensor& ids, KVCache* cache, const ForwardContext& ctx) override;
  at::Tensor logits(const at::Tensor& hidden) override;
  at::Tensor token_nll(const at::Tensor& hidden, const at::Tensor& targets) override;
  int64_t weight_bytes() const override;
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() override;

 private:
  at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) const;

  at::Tensor slopes_;             // [H_local] float32 ALiBi slopes of this rank's heads
  at::Tensor wte_;                // [V_local, hidden] (vocab-parallel; also the head)
  at::Tensor norm_f_w_, norm_f_b_;  // [hidden]
  std::vector<MptLayer> layers_;
};

}  // namespace lminf
