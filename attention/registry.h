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
  // The attention.* keys it reads besides variant, block_size and key_block_size; any other key set
  // to a non-default value is reported as ignored.
  std::vector<std::string> parameters = {};
};

const std::vector<VariantInfo>& attention_variants();
std::vector<std::string> attention_variant_names();

// Every reason `spec` cannot run on this model at this tensor-parallel size (empty: it can). Checked
// by the experiment loader before any weight is read.
std::vector<std::string> attention_problems(const AttentionSpec& spec, const ModelConfig& model, int tensor_parallel);

// The problems that need no model: unknown variant, invalid values, parameters the variant ignores
// (a key counts as set when it differs from AttentionSpec's default).
std::vector<std::string> attention_spec_problems(const AttentionSpec& spec);

// Throws (listing the problems of attention_spec_problems) or returns the variant.
std::unique_ptr<AttentionVariant> make_attention(const AttentionSpec& spec);

}  // namespace lminf
