#include "models/random_checkpoint.h"

#include <fstream>

#include "framework/io/atomic_file.h"
#include "framework/io/checkpoint.h"
#include "framework/core/error.h"

namespace lminf {

// Every family draws from one seeded generator in the order of its tensors: N(0, std) weights
// (std ~ 1/sqrt(fan_in), halved for output projections), 1 + N(0, 0.1) norm weights, N(0, 0.1) biases.
namespace {
struct Sampler {
  at::Generator gen;
  at::Tensor normal(std::vector<int64_t> shape, double std) {
    return at::normal(0.0, std, shape, gen, at::TensorOptions().dtype(at::kFloat));
  }
  at::Tensor norm_weight(int64_t n) { return 1.0 + normal({n}, 0.1); }
};
}  // namespace

NamedTensors random_llama_weights(const ModelConfig& c, uint64_t seed) {
  Sampler r{at::detail::createCPUGenerator(seed)};
  const int64_t h = c.hidden_size, D = c.head_dim, I = c.intermediate_size, V = c.vocab_size;
  const int64_t q = c.n_head * D, kv = c.n_head_kv * D;
  const double sh = 1.0 / std::sqrt(double(h));
  NamedTensors t;
  t.emplace_back("model.embed_tokens.weight", r.normal({V, h}, 0.5));
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    t.emplace_back(p + "input_layernorm.weight", r.norm_weight(h));
    t.emplace_back(p + "self_attn.q_proj.weight", r.normal({q, h}, sh));
    t.emplace_back(p + "self_attn.k_proj.weight", r.normal({kv, h}, sh));
    t.emplace_back(p + "self_attn.v_proj.weight", r.normal({kv, h}, sh));
    t.emplace_back(p + "self_attn.o_proj.weight", r.normal({h, q}, 0.5 / std::sqrt(double(q))));
    if (c.attention_bias) {
      t.emplace_back(p + "self_attn.q_proj.bias", r.normal({q}, 0.1));
      t.emplace_back(p + "self_attn.k_proj.bias", r.normal({kv}, 0.1));
      t.emplace_back(p + "self_attn.v_proj.bias", r.normal({kv}, 0.1));
      t.emplace_back(p + "self_attn.o_proj.bias", r.normal({h}, 0.1));
    }
    t.emplace_back(p + "post_attention_layernorm.weight", r.norm_weight(h));
    t.emplace_back(p + "mlp.gate_proj.weight", r.normal({I, h}, sh));
    t.emplace_back(p + "mlp.up_proj.weight", r.normal({I, h}, sh));
    t.emplace_back(p + "mlp.down_proj.weight", r.normal({h, I}, 0.5 / std::sqrt(double(I))));
    if (c.mlp_bias) {
      t.emplace_back(p + "mlp.gate_proj.bias", r.normal({I}, 0.1));
      t.emplace_back(p + "mlp.up_proj.bias", r.normal({I}, 0.1));
      t.emplace_back(p + "mlp.down_proj.bias", r.normal({h}, 0.1));
    }
  }
  t.emplace_back("model.norm.weight", r.norm_weight(h));
  if (!c.tie_word_embeddings) t.emplace_back("lm_head.weight", r.normal({V, h}, sh));
  return t;
}

NamedTensors random_mpt_weights(const ModelConfig& c, uint64_t seed) {
  Sampler r{at::detail::createCPUGenerator(seed)};
  const int64_t h = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  const double sh = 1.0 / std::sqrt(double(h));
  const bool bias = !c.no_bias;
  NamedTensors t;
  t.emplace_back("transformer.wte.weight", r.normal({V, h}, 0.5));
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = "transformer.blocks." + std::to_string(i) + ".";
    t.emplace_back(p + "norm_1.weight", r.norm_weight(h));
    if (bias) t.emplace_back(p + "norm_1.bias", r.normal({h}, 0.1));
    t.emplace_back(p + "attn.Wqkv.weight", r.normal({3 * h, h}, sh));
    if (bias) t.emplace_back(p + "attn.Wqkv.bias", r.normal({3 * h}, 0.1));
    t.emplace_back(p + "attn.out_proj.weight", r.normal({h, h}, 0.5 * sh));
    if (bias) t.emplace_back(p + "attn.out_proj.bias", r.normal({h}, 0.1));
    t.emplace_back(p + "norm_2.weight", r.norm_weight(h));
    if (bias) t.emplace_back(p + "norm_2.bias", r.normal({h}, 0.1));
    t.emplace_back(p + "ffn.up_proj.weight", r.normal({I, h}, sh));
    if (bias) t.emplace_back(p + "ffn.up_proj.bias", r.normal({I}, 0.1));
    t.emplace_back(p + "ffn.down_proj.weight", r.normal({h, I}, 0.5 / std::sqrt(double(I))));
    if (bias) t.emplace_back(p + "ffn.down_proj.bias", r.normal({h}, 0.1));
  }
  t.emplace_back("transformer.norm_f.weight", r.norm_weight(h));
  if (bias) t.emplace_back("transformer.norm_f.bias", r.normal({h}, 0.1));
  return t;
}

NamedTensors random_gptj_weights(const ModelConfig& c, uint64_t seed) {
  Sampler r{at::detail::createCPUGenerator(seed)};
  const int64_t h = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  const double sh = 1.0 / std::sqrt(double(h));
  NamedTensors t;
  t.emplace_back("transformer.wte.weight", r.normal({V, h}, 0.5));
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = "transformer.h." + std::to_string(i) + ".";
    t.emplace_back(p + "ln_1.weight", r.norm_weight(h));
    t.emplace_back(p + "ln_1.bias", r.normal({h}, 0.1));
    t.emplace_back(p + "attn.q_proj.weight", r.normal({h, h}, sh));
    t.emplace_back(p + "attn.k_proj.weight", r.normal({h, h}, sh));
    t.emplace_back(p + "attn.v_proj.weight", r.normal({h, h}, sh));
    t.emplace_back(p + "attn.out_proj.weight", r.normal({h, h}, 0.5 * sh));
    t.emplace_back(p + "mlp.fc_in.weight", r.normal({I, h}, sh));
    t.emplace_back(p + "mlp.fc_in.bias", r.normal({I}, 0.1));
    t.emplace_back(p + "mlp.fc_out.weight", r.normal({h, I}, 0.5 / std::sqrt(double(I))));
    t.emplace_back(p + "mlp.fc_out.bias", r.normal({h}, 0.1));
  }
  t.emplace_back("transformer.ln_f.weight", r.norm_weight(h));
  t.emplace_back("transformer.ln_f.bias", r.normal({h}, 0.1));
  t.emplace_back("lm_head.weight", r.normal({V, h}, sh));
  t.emplace_back("lm_head.bias", r.normal({V}, 0.1));
  return t;
}

NamedTensors write_random_llama(const std::filesystem::path& dir, const ModelConfig& c, uint64_t seed, int n_shards,
                                at::ScalarType storage) {
  return write_random_model(dir, c, seed, n_shards, storage);
}

NamedTensors write_random_model(const std::filesystem::path& dir, const ModelConfig& c, uint64_t seed, int n_shards,
                                at::ScalarType storage) {
  c.validate("random checkpoint config");
  NamedTensors weights = c.model_type == "mpt"    ? random_mpt_weights(c, seed)
                         : c.model_type == "gptj" ? random_gptj_weights(c, seed)
                                                  : random_llama_weights(c, seed);
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

std::vector<std::string> family_names() { return {"llama", "mpt", "gptj"}; }

ModelConfig family_preset(const std::string& preset, const std::string& family) {
  ModelConfig c = llama_preset(preset);
  if (family == "llama") return c;
  if (family != "mpt" && family != "gptj") fail("unknown model family \"", family, "\" (available: llama, mpt, gptj)");
  c.model_type = family;
  c.n_head_kv = c.n_head;
  c.head_dim = c.hidden_size / c.n_head;
  c.intermediate_size = 4 * c.hidden_size;
  c.layer_norm_eps = 1e-5;
  c.tie_word_embeddings = family == "mpt";
  if (family == "mpt") {
    c.alibi = true;
    c.alibi_bias_max = 8.0;
    c.hidden_act = "gelu";
  } else {
    c.rotary_dim = c.head_dim / 2;
    c.rope_interleaved = true;
    c.hidden_act = "gelu_new";
    c.lm_head_bias = true;
  }
  return c;
}

}  // namespace lminf
