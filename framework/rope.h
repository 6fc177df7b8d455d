// Rotary position embeddings in Hugging Face's rotate-half layout, with HF's rope_scaling types
// (linear, dynamic NTK, YaRN, llama3). Frequencies and phases are computed in float32, as HF does.
#pragma once

#include <ATen/ATen.h>

#include "framework/model_config.h"

namespace lminf {

class RotaryEmbedding {
 public:
  // rot_dim: number of rotated features per head (head_dim for Llama).
  RotaryEmbedding(int64_t rot_dim, double theta, int64_t max_position_embeddings, RopeScaling scaling);
  static RotaryEmbedding for_model(const ModelConfig& c) {
    return RotaryEmbedding(c.head_dim, c.rope_theta, c.max_position_embeddings, c.rope_scaling);
  }

  // Inverse frequencies [rot_dim/2], float32. `seq_len` (the largest position + 1 seen by the
  // forward call) matters only for dynamic NTK scaling, which grows the base past the trained length.
  at::Tensor inv_freq(int64_t seq_len) const;
  // Multiplier applied to cos and sin (YaRN's attention factor; 1 otherwise).
  double attention_scaling() const { return attention_scaling_; }

  // cos and sin tables for `positions` ([T] int64): each [T, rot_dim], float32.
  std::pair<at::Tensor, at::Tensor> cos_sin(const at::Tensor& positions, int64_t seq_len) const;

  // Rotates x ([B, H, T, rot_dim] or wider: the first rot_dim features are rotated) by cos/sin
  // ([T, rot_dim]); returns x's dtype. x' = x*cos + rotate_half(x)*sin, rotate_half([a,b]) = [-b,a].
  static at::Tensor apply(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

  // Convenience: rotate x at `positions` ([T] int64), with seq_len = max(positions)+1 for dynamic.
  at::Tensor rotate(const at::Tensor& x, const at::Tensor& positions, int64_t seq_len) const;

  int64_t rot_dim() const { return rot_dim_; }
  const RopeScaling& scaling() const { return scaling_; }

 private:
  int64_t rot_dim_;
  double theta_;
  int64_t max_pos_;
  RopeScaling scaling_;
  at::Tensor inv_freq_;  // [rot_dim/2] float32, for every type but dynamic past max_pos
  double attention_scaling_ = 1.0;
};

}  // namespace lminf
