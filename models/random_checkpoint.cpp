#include "models/random_checkpoint.h"

#include <fstream>

#include "framework/atomic_file.h"
#include "framework/checkpoint.h"
#include "framework/error.h"

namespace lminf {

NamedTensors random_llama_weights(const ModelConfig& c, uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  auto normal = [&](std::vector<int64_t> shape, double std) {
    return at::normal(0.0, std, shape, gen, at::TensorOptions().dtype(at::kFloat));
  };
  auto norm_weight = [&](int64_t n) { return 1.0 + normal({n}, 0.1); };
  const int64_t h = c.hidden_size, D = c.head_dim, I = c.intermediate_size, V = c.vocab_size;
  const int64_t q = c.n_head * D, kv = c.n_head_kv * D;
  NamedTensors t;
  t.emplace_back("model.embed_tokens.weight", normal({V, h}, 0.5));
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    t.emplace_back(p + "input_layernorm.weight", norm_weight(h));
    t.emplace_back(p + "self_attn.q_proj.weight", normal({q, h}, 1.0 / std::sqrt(double(h))));
    t.emplace_back(p + "self_attn.k_proj.weight", normal({kv, h}, 1.0 / std::sqrt(double(h))));
    t.emplace_back(p + "self_attn.v_proj.weight", normal({kv, h}, 1.0 / std::sqrt(double(h))));
    t.emplace_back(p + "self_attn.o_proj.weight", normal({h, q}, 0.5 / std::sqrt(double(q))));
    if (c.attention_bias) {
      t.emplace_back(p + "self_attn.q_proj.bias", normal({q}, 0.1));
      t.emplace_back(p + "self_attn.k_proj.bias", normal({kv}, 0.1));
      t.emplace_back(p + "self_attn.v_proj.bias", normal({kv}, 0.1));
      t.emplace_back(p + "self_attn.o_proj.bias", normal({h}, 0.1));
    }
    t.emplace_back(p + "post_attention_layernorm.weight", norm_weight(h));
    t.emplace_back(p + "mlp.gate_proj.weight", normal({I, h}, 1.0 / std::sqrt(double(h))));
    t.emplace_back(p + "mlp.up_proj.weight", normal({I, h}, 1.0 / std::sqrt(double(h))));
    t.emplace_back(p + "mlp.down_proj.weight", normal({h, I}, 0.5 / std::sqrt(double(I))));
    if (c.mlp_bias) {
      t.emplace_back(p + "mlp.gate_proj.bias", normal({I}, 0.1));
      t.emplace_back(p + "mlp.up_proj.bias", normal({I}, 0.1));
      t.emplace_back(p + "mlp.down_proj.bias", normal({h}, 0.1));
    }
  }
  t.emplace_back("model.norm.weight", norm_weight(h));
  if (!c.tie_word_embeddings) t.emplace_back("lm_head.weight", normal({V, h}, 1.0 / std::sqrt(double(h))));
  return t;
}

NamedTensors write_random_llama(const std::filesystem::path& dir, const ModelConfig& c, uint64_t seed, int n_shards,
                                at::ScalarType storage) {
  c.validate("random checkpoint config");
  NamedTensors weights = random_llama_weights(c, seed);
  NamedTensors stored;
  for (auto& [name, w] : weights) stored.emplace_back(name, w.to(storage));
  std::filesystem::create_directories(dir);
  write_checkpoint(dir, stored, n_shards);
  ModelConfig out = c;
  if (out.torch_dtype.empty()) out.torch_dtype = storage == at::kBFloat16 ? "bfloat16" : storage == at::kHalf ? "float16" : "float32";
  write_file_atomic(dir / "config.json", out.to_json().dump(2) + "\n");
  // The caller compares against what was stored (rounded to `storage`), as float32.
  for (auto& [name, w] : stored) w = w.to(at::kFloat);
  return stored;
}

ModelConfig llama_preset(const std::string& name) {
  ModelConfig c;
  c.model_type = "llama";
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  c.rms_norm_eps = 1e-5;
  if (name == "tiny") {
    c.hidden_size = 64;
    c.intermediate_size = 96;
    c.n_layer = 2;
    c.n_head = 4;
    c.n_head_kv = 2;
    c.head_dim = 16;
    c.vocab_size = 256;
    c.max_position_embeddings = 256;
  } else if (name == "llama-110m") {
    c.hidden_size = 768;
    c.intermediate_size = 2048;
    c.n_layer = 12;
    c.n_head = 12;
    c.n_head_kv = 12;
    c.head_dim = 64;
    c.vocab_size = 32000;
    c.max_position_embeddings = 2048;
  } else {
    std::string names;
    for (const auto& n : llama_preset_names()) names += (names.empty() ? "" : ", ") + n;
    fail("unknown model preset \"", name, "\" (available: ", names, ")");
  }
  return c;
}

std::vector<std::string> llama_preset_names() { return {"tiny", "llama-110m"}; }

}  // namespace lminf
