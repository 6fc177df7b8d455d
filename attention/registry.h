// The attention variants, registered by name in one explicit list (static self-registration would
// be dropped by the linker from static libraries). An entry says everything the rest of lminf needs
// to know about a variant: its parameters (read, written, described and validated by the struct
// itself), how to build it, and the small cases every test of all variants runs it on. Its float64
// reference rule lives in attention/reference/variant_rules.cpp (tests and benchmarks only), keyed by
// the same name; tests/attention/every_variant_test.cpp fails for a variant without one.
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
  // The variant's parameter struct with its defaults (attention/variant_params.h).
  std::function<std::unique_ptr<VariantParams>()> params;
  std::function<std::unique_ptr<AttentionVariant>(const AttentionSpec&)> make;
  // Attention sections (YAML maps without `variant`) the tests run every variant on: windows of
  // about 10 tokens, so windows, sinks and bounded caches act on sequences of 20 to 64 tokens, and
  // retrieval from layer 1 of the tiny 2-layer test models.
  std::vector<std::string> test_sections;
};

const std::vector<VariantInfo>& attention_variants();
std::vector<std::string> attention_variant_names();
const VariantInfo* find_attention_variant(const std::string& name);  // null: not registered
// The attention.* keys a variant reads besides variant, block_size and key_block_size.
std::vector<std::string> attention_variant_keys(const VariantInfo& info);
// The test sections of every variant as whole attention sections, one line each ("{variant: lambda, ...}").
std::vector<std::string> attention_test_sections();

// True when the model encodes positions relatively: rotary embeddings or ALiBi (every family today).
bool has_relative_positions(const ModelConfig& model);

// Every reason `spec` cannot run on this model at this tensor-parallel size (empty: it can). Checked
// by the experiment loader before any weight is read.
std::vector<std::string> attention_problems(const AttentionSpec& spec, const ModelConfig& model, int tensor_parallel);

// The problems that need no model: unknown variant, invalid tile sizes, the variant's invalid values.
// (Keys of other variants are reported when the section is read.)
std::vector<std::string> attention_spec_problems(const AttentionSpec& spec);

// Throws (listing the problems of attention_spec_problems) or returns the variant.
std::unique_ptr<AttentionVariant> make_attention(const AttentionSpec& spec);

}  // namespace lminf
