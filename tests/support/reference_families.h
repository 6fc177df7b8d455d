// Plain float64 forwards of the MPT and GPT-J families, written from their definitions and
// independent of models/ and of the attention kernels: explicit per-head loops, dense [T, T] logits,
// ALiBi slopes and GPT-J's interleaved partial rotary computed here. Each takes an optional attention
// rule (which keys a query sees, and the positions query and key are encoded at -- the tables of
// attention/reference/rule_reference.h), so every variant can be checked on every family. Slow; tiny models only.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <vector>

#include "attention/reference/rule_reference.h"
#include "framework/transformer/model_config.h"
#include "support/reference_llama.h"

namespace lminf::testing {

// The rule of one layer for a sequence at positions 0..T-1; q, k: [1, H, T, D] float64 pre-encoding
// (data-dependent rules such as top-k read them). Null: vanilla causal attention at true distances.
using ReferenceRule = std::function<AttentionRule(const at::Tensor& q, const at::Tensor& k, int64_t layer)>;

// MPT slopes from their definition (float64): P = next power of two >= H, slope_i = 2^(-(i+1) bias_max / P),
// heads not a power of two take the odd-indexed slopes, then the even-indexed ones.
std::vector<double> reference_alibi_slopes(int64_t n_head, double bias_max);

// Logits [T, V] float64 of one sequence.
at::Tensor reference_mpt_logits(const WeightMap& w, const ModelConfig& c, const std::vector<int64_t>& ids,
                                const ReferenceRule& rule = nullptr);
at::Tensor reference_gptj_logits(const WeightMap& w, const ModelConfig& c, const std::vector<int64_t>& ids,
                                 const ReferenceRule& rule = nullptr);

// Per-token NLL [T-1] float64 from logits [T, V]: entry i is -log p(ids[i+1] | ids[0..i]).
at::Tensor nll_from_logits(const at::Tensor& logits, const std::vector<int64_t>& ids);

}  // namespace lminf::testing
