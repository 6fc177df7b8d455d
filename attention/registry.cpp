#include "attention/registry.h"

#include <algorithm>

#include "attention/vanilla.h"
#include "framework/error.h"

namespace lminf {

const std::vector<VariantInfo>& attention_variants() {
  static const std::vector<VariantInfo> variants = {
      {"vanilla", "causal attention over every earlier token at its true distance (the model as trained)",
       [](const AttentionSpec& s) { return std::make_unique<VanillaAttention>(s); }},
  };
  return variants;
}

std::vector<std::string> attention_variant_names() {
  std::vector<std::string> names;
  for (const auto& v : attention_variants()) names.push_back(v.name);
  return names;
}

namespace {
const VariantInfo* find_variant(const std::string& name) {
  for (const auto& v : attention_variants())
    if (v.name == name) return &v;
  return nullptr;
}
std::string joined_names() {
  std::string s;
  for (const auto& n : attention_variant_names()) s += (s.empty() ? "" : ", ") + n;
  return s;
}
}  // namespace

std::vector<std::string> attention_problems(const AttentionSpec& spec, const ModelConfig& model, int tensor_parallel) {
  std::vector<std::string> problems;
  const VariantInfo* info = find_variant(spec.variant);
  if (!info) {
    problems.push_back("attention.variant: \"" + spec.variant + "\" is not a variant (available: " + joined_names() + ")");
    return problems;
  }
  if (spec.block_size <= 0) problems.push_back("attention.block_size must be > 0");
  if (spec.key_block_size <= 0) problems.push_back("attention.key_block_size must be > 0");
  auto variant = info->make(spec);
  VariantSupport sup = variant->support();
  if (!sup.model_types.empty() &&
      std::find(sup.model_types.begin(), sup.model_types.end(), model.model_type) == sup.model_types.end()) {
    problems.push_back("attention.variant " + spec.variant + " does not support model_type " + model.model_type);
  }
  if (!sup.gqa && model.n_head_kv != model.n_head) {
    problems.push_back("attention.variant " + spec.variant + " does not support grouped-query attention");
  }
  if (!sup.tensor_parallel && tensor_parallel > 1) {
    problems.push_back("attention.variant " + spec.variant + " does not support tensor parallelism");
  }
  return problems;
}

std::unique_ptr<AttentionVariant> make_attention(const AttentionSpec& spec) {
  const VariantInfo* info = find_variant(spec.variant);
  if (!info) fail("attention.variant: \"", spec.variant, "\" is not a variant (available: ", joined_names(), ")");
  return info->make(spec);
}

}  // namespace lminf
