// The attention variants, registered by name in one explicit list (static self-registration would
// be dropped by the linker from static libraries).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "attention/attention_spec.h"
#include "attention/attention_variant.h"

namespace lminf {

struct VariantInfo {
  std::string name;
  std::string summary;
  std::function<std::unique_ptr<AttentionVariant>(const AttentionSpec&)> make;
};

const std::vector<VariantInfo>& attention_variants();
std::vector<std::string> attention_variant_names();

// Every reason `spec` cannot run on this model at this tensor-parallel size (empty: it can). Checked
// by the experiment loader before any weight is read.
std::vector<std::string> attention_problems(const AttentionSpec& spec, const ModelConfig& model, int tensor_parallel);

// Throws (listing the problems) or returns the variant.
std::unique_ptr<AttentionVariant> make_attention(const AttentionSpec& spec);

}  // namespace lminf
