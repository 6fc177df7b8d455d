// Random checkpoints of any family in Hugging Face layout (config.json + safetensors), for tests,
// benchmarks and the demo: the family's weight table drawn from a seeded generator (models/model_family.h,
// Init), and the named presets they are sized by.
#pragma once

#include <ATen/ATen.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "framework/transformer/model_config.h"
#include "models/model_families.h"
#include "models/model_family.h"

namespace lminf {

// The tensors of a checkpoint of `c` (its family's weight table), float32, deterministic for `seed`.
NamedTensors random_weights(const ModelConfig& c, uint64_t seed);

// Writes config.json (in the family's own keys) and the weights (stored as `storage` dtype, split
// over n_shards files); returns the stored tensors as float32.
NamedTensors write_random_model(const std::filesystem::path& dir, const ModelConfig& c, uint64_t seed,
                                int n_shards = 1, at::ScalarType storage = at::kFloat);
// The same (the name older callers use for Llama presets).
NamedTensors write_random_llama(const std::filesystem::path& dir, const ModelConfig& c, uint64_t seed,
                                int n_shards = 1, at::ScalarType storage = at::kFloat);

// A preset's sizes as a model of `family` (a name of model_families(); the family's record says how,
// e.g. MPT: ALiBi, one kv head per query head, intermediate 4 x hidden; GPT-J: rotary_dim head_dim / 2).
ModelConfig family_preset(const std::string& preset, const std::string& family);

// Named presets: "tiny" (2 layers, hidden 64, GQA 4/2, vocab 256), "llama-110m" (hidden 768,
// 12 layers, 12 heads, intermediate 2048, vocab 32000).
ModelConfig llama_preset(const std::string& name);
std::vector<std::string> llama_preset_names();

}  // namespace lminf
