// Each registered variant's rule (attention/reference/rule_reference.h) built from its parameters:
// the reference every variant is tested against, kept apart from the registry because references
// are linked into tests and benchmarks only. Keyed by the registry's names; a registered variant
// without a rule fails tests/attention/every_variant_test.cpp.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

#include "attention/attention_spec.h"
#include "attention/reference/rule_reference.h"

namespace lminf {

// One forward call as the rule sees it (data-dependent rules such as topk's read q and k).
struct RuleCall {
  at::Tensor q;          // [B, H, Tq, D] pre-encoding queries
  at::Tensor k;          // [B, Hkv, K, D] pre-encoding keys: the cache, then the call's own
  int64_t q_offset = 0;  // cache index of query row 0 (= K - Tq)
  int64_t layer = 0;
  const RuleEncoding* encoding = nullptr;
  int64_t seq_len = 0;  // the rotary tables' seq_len (the variants pass K)
  double scale = 1.0;
};

using VariantRule = std::function<AttentionRule(const AttentionSpec& spec, const RuleCall& call)>;

// The rule of `variant` (null: none registered here).
const VariantRule* variant_rule(const std::string& variant);
std::vector<std::string> variants_with_rules();

}  // namespace lminf
