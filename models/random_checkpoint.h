// Random Llama-family checkpoints in Hugging Face layout (config.json + safetensors), for tests,
// benchmarks and the demo. Weights are N(0, 0.02) (norms 1 + small noise) from a seeded generator.
#pragma once

#include <ATen/ATen.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "framework/transformer/model_config.h"

namespace lminf {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// The HF tensors of a Llama model with config `c`, float32, deterministic for `seed`.
NamedTensors random_llama_weights(const ModelConfig& c, uint64_t seed);

// Writes config.json and the weights (stored as `storage` dtype, split over n_shards files).
NamedTensors write_random_llama(const std::filesystem::path& dir, const ModelConfig& c, uint64_t seed,
                                int n_shards = 1, at::ScalarType storage = at::kFloat);

// The same for the other families, HF tensor names (MPT: transformer.wte, transformer.blocks.N.
// {norm_1, attn.Wqkv, attn.out_proj, norm_2, ffn.up_proj, ffn.down_proj}, transformer.norm_f, biases
// when !no_bias; GPT-J: transformer.wte, transformer.h.N.{ln_1, attn.{q,k,v,out}_proj, mlp.fc_in,
// mlp.fc_out}, transformer.ln_f, lm_head.{weight,bias}).
NamedTensors random_mpt_weights(const ModelConfig& c, uint64_t seed);
NamedTensors random_gptj_weights(const ModelConfig& c, uint64_t seed);
// Dispatches on c.model_type (llama, mistral, mpt, gptj) and writes config.json in that family's
// own keys; returns the stored tensors as float32.
NamedTensors write_random_model(const std::filesystem::path& dir, const ModelConfig& c, uint64_t seed,
                                int n_shards = 1, at::ScalarType storage = at::kFloat);

// A preset's sizes as a model of `family` (llama, mpt, gptj): MPT gets ALiBi (alibi_bias_max 8),
// intermediate = 4 x hidden rounded from the preset, one head group per preset head; GPT-J gets
// rotary_dim = head_dim / 2 and intermediate 4 x hidden.
ModelConfig family_preset(const std::string& preset, const std::string& family);
std::vector<std::string> family_names();

// Named presets: "tiny" (2 layers, hidden 64, GQA 4/2, vocab 256), "llama-110m" (hidden 768,
// 12 layers, 12 heads, intermediate 2048, vocab 32000).
ModelConfig llama_preset(const std::string& name);
std::vector<std::string> llama_preset_names();

}  // namespace lminf
