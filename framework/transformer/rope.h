// Rotary position embeddings with HF's rope_scaling types (linear, dynamic NTK, YaRN, llama3), in
// one of two layouts: rotate-half (Llama, GPT-NeoX: feature i pairs with i + rot_dim/2) or
// interleaved (GPT-J's rotate_every_two: features 2i and 2i+1 pair). Only the first rot_dim features
// of a head are rotated (GPT-J's partial rotary); the rest pass through. Frequencies and phases are
// computed in float32, as HF does.
#pragma once

#include <ATen/ATen.h>

#include "framework/transformer/model_config.h"

namespace lminf {

enum class RopeLayout {
  kHalf,         // x' = x*cos + [-x2, x1]*sin with x = [x1, x2] halves (Llama, GPT-NeoX)
  kInterleaved,  // pairs (x_2i, x_2i+1) -> (x_2i cos - x_2i+1 sin, x_2i+1 cos + x_2i sin) (GPT-J)
};

class RotaryEmbedding {
 public:
  // rot_dim: number of rotated features per head (head_dim for Llama, rotary_dim for GPT-J).
  RotaryEmbedding(int64_t rot_dim, double theta, int64_t max_position_embeddings, RopeScaling scaling,
                  RopeLayout layout = RopeLayout::kHalf);
  static RotaryEmbedding for_model(const ModelConfig& c) {
    return RotaryEmbedding(c.rotary_dims(), c.rope_theta, c.max_position_embeddings, c.rope_scaling,
                           c.rope_interleaved ? RopeLayout::kInterleaved : RopeLayout::kHalf);
  }

  // Inverse frequencies [rot_dim/2], float32. `seq_len` (the largest position + 1 seen by the
  // forward call) matters only for dynamic NTK scaling, which grows the base past the trained length.
  at::Tensor inv_freq(int64_t seq_len) const;
  // Multiplier applied to cos and sin (YaRN's attention factor; 1 otherwise).
  double attention_scaling() const { return attention_scaling_; }

  // cos and sin tables for `positions` ([T] int64): each [T, rot_dim], float32, in this layout's
  // feature order (rotate-half: [f, f]; interleaved: each frequency twice in a row).
  std::pair<at::Tensor, at::Tensor> cos_sin(const at::Tensor& positions, int64_t seq_len) const;

  // Rotates x ([B, H, T, rot_dim] or wider: the first rot_dim features are rotated) by cos/sin
  // ([T, rot_dim]) in `layout`; returns x's dtype. x' = x*cos + partner(x)*sin with partner
  // rotate_half([a,b]) = [-b,a] or rotate_every_two: (a0,a1,..) -> (-a1,a0,..).
  static at::Tensor apply(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                          RopeLayout layout = RopeLayout::kHalf);
  // The same in this embedding's layout.
  at::Tensor apply_rotation(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) const {
    return apply(x, cos, sin, layout_);
  }

  // Convenience: rotate x at `positions` ([T] int64), with seq_len = max(positions)+1 for dynamic.
  at::Tensor rotate(const at::Tensor& x, const at::Tensor& positions, int64_t seq_len) const;

  // Whether a position's rotation depends on the call's length (dynamic NTK scaling), so keys
  // rotated once cannot be reused as the sequence grows.
  bool length_dependent() const;
  int64_t rot_dim() const { return rot_dim_; }
  RopeLayout layout() const { return layout_; }
  const RopeScaling& scaling() const { return scaling_; }

 private:
  int64_t rot_dim_;
  double theta_;
  int64_t max_pos_;
  RopeScaling scaling_;
  RopeLayout layout_;
  at::Tensor inv_freq_;  // [rot_dim/2] float32, for every type but dynamic past max_pos
  double attention_scaling_ = 1.0;
};

}  // namespace lminf
