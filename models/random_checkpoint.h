// Random Llama-family checkpoints in Hugging Face layout (config.json + safetensors), for tests,
// benchmarks and the demo. Weights are N(0, 0.02) (norms 1 + small noise) from a seeded generator.
#pragma once

#include <ATen/ATen.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "framework/model_config.h"

namespace lminf {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// The HF tensors of a Llama model with config `c`, float32, deterministic for `seed`.
NamedTensors random_llama_weights(const ModelConfig& c, uint64_t seed);

// Writes config.json and the weights (stored as `storage` dtype, split over n_shards files).
NamedTensors write_random_llama(const std::filesystem::path& dir, const ModelConfig& c, uint64_t seed,
                                int n_shards = 1, at::ScalarType storage = at::kFloat);

// Named presets: "tiny" (2 layers, hidden 64, GQA 4/2, vocab 256), "llama-110m" (hidden 768,
// 12 layers, 12 heads, intermediate 2048, vocab 32000).
ModelConfig llama_preset(const std::string& name);
std::vector<std::string> llama_preset_names();

}  // namespace lminf
