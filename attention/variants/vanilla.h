// Vanilla causal attention (the model as trained): every earlier key at its true distance, through
// the blockwise kernel. Honours a model's sliding_window (Mistral).
#pragma once

#include "attention/attention_spec.h"
#include "attention/attention_variant.h"
#include "attention/kernels/blockwise.h"

namespace lminf {

class VanillaAttention final : public AttentionVariant {
 public:
  explicit VanillaAttention(const AttentionSpec& spec);
  std::string name() const override { return "vanilla"; }
  VariantSupport support() const override { return VariantSupport{}; }
  at::Tensor forward(const AttentionCall& call) const override;

 private:
  BlockwiseOptions opts_;
};

}  // namespace lminf
