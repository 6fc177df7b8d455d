// A plain float64 Llama forward written independently of models/: explicit per-head loops, a dense
// causal mask, RoPE from its definition. Slow; for tests on tiny models only.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "framework/transformer/model_config.h"

namespace lminf::testing {

using WeightMap = std::map<std::string, at::Tensor>;
WeightMap to_map(const std::vector<std::pair<std::string, at::Tensor>>& named);

// Logits [T, V] float64 for one sequence `ids` (positions 0..T-1), default (unscaled) RoPE unless the
// config's rope_scaling is linear (positions divided by the factor).
at::Tensor reference_llama_logits(const WeightMap& w, const ModelConfig& c, const std::vector<int64_t>& ids);

// Per-token NLL [T-1] float64: entry i is -log p(ids[i+1] | ids[0..i]).
at::Tensor reference_llama_nll(const WeightMap& w, const ModelConfig& c, const std::vector<int64_t>& ids);

}  // namespace lminf::testing
