// Token generation with a KV cache: the prompt is prefilled once, then one token per step.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "models/causal_lm.h"

namespace lminf {

struct GenerateOptions {
  int64_t max_new_tokens = 64;
  bool do_sample = false;    // false: greedy (argmax)
  double temperature = 1.0;  // sampling only
  int64_t top_k = 0;         // 0: off
  double top_p = 1.0;        // nucleus sampling; 1: off
  uint64_t seed = 0;
  std::vector<int64_t> stop_tokens;  // generation ends after emitting one of these (e.g. EOS)
  // Optional: called with the tokens generated so far after each new token; true ends generation
  // (stop strings: experiments/tasks/generation_common.h).
  std::function<bool(const std::vector<int64_t>& generated)> stop_when;
};

// Returns the generated tokens (not the prompt). Deterministic for a given seed: sampling draws from
// a std::mt19937_64 over float64 probabilities, independent of the libtorch build.
std::vector<int64_t> generate(CausalLM& model, const AttentionVariant& attention, const std::vector<int64_t>& prompt,
                              const GenerateOptions& opts, const ObserverSet* observers = nullptr);

// Picks the next token from full-vocabulary logits ([V] float32) under `opts`; `rng_state` advances.
int64_t pick_token(const at::Tensor& logits, const GenerateOptions& opts, uint64_t& rng_state);

}  // namespace lminf
