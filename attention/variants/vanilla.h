// Vanilla causal attention (the model as trained): every earlier key at its true distance, through
// the blockwise kernel. Honours a model's sliding_window (Mistral).
#pragma once

#include <string>
#include <vector>

#include "attention/attention_variant.h"
#include "attention/kernels/blockwise.h"

namespace lminf {

// Vanilla reads no attention.* keys of its own.
struct VanillaParams {
  template <class V>
  void visit(V&) {}
  std::vector<std::string> problems() const { return {}; }
};

class VanillaAttention final : public AttentionVariant {
 public:
  VanillaAttention(const VanillaParams&, BlockwiseOptions tiles) : opts_(tiles) {}
  std::string name() const override { return "vanilla"; }
  VariantSupport support() const override { return VariantSupport{}; }
  at::Tensor forward(const AttentionCall& call) const override;

 private:
  BlockwiseOptions opts_;
};

}  // namespace lminf
