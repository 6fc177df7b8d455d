// Random checkpoints from the families' weight tables, and the named presets (random_checkpoint.h).
#include "models/random_checkpoint.h"

#include <cmath>

#include "framework/io/atomic_file.h"
#include "framework/io/checkpoint.h"
#include "framework/core/error.h"
#include "framework/core/format.h"
#include "models/model_config_json.h"

namespace lminf {

namespace {

// Draws every tensor of a weight table from one seeded generator, in the table's order.
struct Sampler {
  at::Generator gen;
  at::Tensor normal(const std::vector<int64_t>& shape, double std) {
    return at::normal(0.0, std, shape, gen, at::TensorOptions().dtype(at::kFloat));
  }
  at::Tensor draw(const WeightSpec& w) {
    switch (w.init) {
      case Init::kEmbedding: return normal(w.shape, 0.5);
      case Init::kLinear: return normal(w.shape, 1.0 / std::sqrt(double(w.shape[1])));
      case Init::kOutput: return normal(w.shape, 0.5 / std::sqrt(double(w.shape[1])));
      case Init::kNorm: return 1.0 + normal(w.shape, 0.1);
      case Init::kBias: break;
    }
    return normal(w.shape, 0.1);
  }
};

std::string storage_name(at::ScalarType storage) {
  return storage == at::kBFloat16 ? "bfloat16" : storage == at::kHalf ? "float16" : "float32";
}

}  // namespace

NamedTensors random_weights(const ModelConfig& c, uint64_t seed) {
  Sampler r{at::detail::createCPUGenerator(seed)};
  NamedTensors t;
  for (const WeightSpec& w : find_family(c.model_type, "random checkpoint config").weights(c))
    t.emplace_back(w.name, r.draw(w));
  return t;
}

NamedTensors write_random_llama(const std::filesystem::path& dir, const ModelConfig& c, uint64_t seed, int n_shards,
                                at::ScalarType storage) {
  return write_random_model(dir, c, seed, n_shards, storage);
}

NamedTensors write_random_model(const std::filesystem::path& dir, const ModelConfig& c, uint64_t seed, int n_shards,
                                at::ScalarType storage) {
  validate_model_config(c, "random checkpoint config");
  NamedTensors stored;
  for (auto& [name, w] : random_weights(c, seed)) stored.emplace_back(name, w.to(storage));
  std::filesystem::create_directories(dir);
  write_checkpoint(dir, stored, n_shards);
  ModelConfig out = c;
  if (out.torch_dtype.empty()) out.torch_dtype = storage_name(storage);
  write_file_atomic(dir / "config.json", model_config_to_json(out).dump(2) + "\n");
  // The caller compares against what was stored (rounded to `storage`), as float32.
  for (auto& [name, w] : stored) w = w.to(at::kFloat);
  return stored;
}

namespace {

// The named presets' sizes, in a Llama config.json's keys: the llama family reads them like any
// checkpoint's config.
const std::vector<std::pair<std::string, nlohmann::json>>& presets() {
  static const std::vector<std::pair<std::string, nlohmann::json>> p = {
      {"tiny",
       {{"hidden_size", 64}, {"intermediate_size", 96}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
        {"num_key_value_heads", 2}, {"head_dim", 16}, {"vocab_size", 256}, {"max_position_embeddings", 256}}},
      {"llama-110m",
       {{"hidden_size", 768}, {"intermediate_size", 2048}, {"num_hidden_layers", 12}, {"num_attention_heads", 12},
        {"num_key_value_heads", 12}, {"head_dim", 64}, {"vocab_size", 32000}, {"max_position_embeddings", 2048}}},
  };
  return p;
}

}  // namespace

ModelConfig llama_preset(const std::string& name) {
  for (const auto& [preset, sizes] : presets()) {
    if (name != preset) continue;
    nlohmann::json j = sizes;
    j["model_type"] = "llama";
    j["rms_norm_eps"] = 1e-5;
    j["bos_token_id"] = 1;
    j["eos_token_id"] = 2;
    return model_config_from_json(j, "model preset " + name);
  }
  fail("unknown model preset \"", name, "\" (available: ", join_list(llama_preset_names()), ")");
}

std::vector<std::string> llama_preset_names() {
  std::vector<std::string> names;
  for (const auto& p : presets()) names.push_back(p.first);
  return names;
}

ModelConfig family_preset(const std::string& preset, const std::string& family) {
  return family_named(family).preset(llama_preset(preset));
}

}  // namespace lminf
