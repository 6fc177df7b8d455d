#include "framework/transformer/model_config.h"

#include <cmath>
#include <fstream>

#include "framework/core/error.h"

namespace lminf {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

template <class T>
T get_or(const json& j, const char* key, T fallback, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    fail(where, ": key \"", key, "\" has the wrong type (", it->dump(), ")");
  }
}

std::optional<double> opt_double(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) fail(where, ": rope_scaling.", key, " must be a number, got ", it->dump());
  return it->get<double>();
}

}  // namespace

bool RopeScaling::operator==(const RopeScaling& o) const {
  return to_json() == o.to_json();
}

json RopeScaling::to_json() const {
  if (type == "default") return nullptr;
  json j;
  j["rope_type"] = type;
  j["factor"] = factor;
  if (original_max_position_embeddings) j["original_max_position_embeddings"] = *original_max_position_embeddings;
  if (type == "llama3") {
    j["low_freq_factor"] = low_freq_factor;
    j["high_freq_factor"] = high_freq_factor;
  }
  if (attention_factor) j["attention_factor"] = *attention_factor;
  if (beta_fast) j["beta_fast"] = *beta_fast;
  if (beta_slow) j["beta_slow"] = *beta_slow;
  if (mscale) j["mscale"] = *mscale;
  if (mscale_all_dim) j["mscale_all_dim"] = *mscale_all_dim;
  if (type == "yarn" && !truncate) j["truncate"] = false;
  return j;
}

RopeScaling RopeScaling::from_json(const json& j, const std::string& where) {
  RopeScaling r;
  if (j.is_null()) return r;
  if (!j.is_object()) fail(where, ": rope_scaling must be an object or null, got ", j.dump());
  std::string type;
  if (j.contains("rope_type")) type = j["rope_type"].get<std::string>();
  else if (j.contains("type")) type = j["type"].get<std::string>();
  else fail(where, ": rope_scaling has no \"rope_type\" (or \"type\") key");
  if (type == "default") return r;
  if (type != "linear" && type != "dynamic" && type != "yarn" && type != "llama3") {
    fail(where, ": rope_scaling type \"", type,
         "\" is not supported (supported: default, linear, dynamic, yarn, llama3)");
  }
  r.type = type;
  auto f = j.find("factor");
  if (f == j.end() || !f->is_number()) fail(where, ": rope_scaling.factor is required for type ", type);
  r.factor = f->get<double>();
  if (r.factor < 1.0 && type != "linear") fail(where, ": rope_scaling.factor must be >= 1, got ", r.factor);
  if (r.factor <= 0.0) fail(where, ": rope_scaling.factor must be > 0, got ", r.factor);
  if (j.contains("original_max_position_embeddings") && !j["original_max_position_embeddings"].is_null())
    r.original_max_position_embeddings = j["original_max_position_embeddings"].get<int64_t>();
  if (type == "llama3") {
    r.low_freq_factor = get_or<double>(j, "low_freq_factor", 1.0, where);
    r.high_freq_factor = get_or<double>(j, "high_freq_factor", 4.0, where);
    if (!r.original_max_position_embeddings)
      fail(where, ": rope_scaling type llama3 needs original_max_position_embeddings");
    if (r.high_freq_factor <= r.low_freq_factor)
      fail(where, ": rope_scaling.high_freq_factor must exceed low_freq_factor");
  }
  r.attention_factor = opt_double(j, "attention_factor", where);
  r.beta_fast = opt_double(j, "beta_fast", where);
  r.beta_slow = opt_double(j, "beta_slow", where);
  r.mscale = opt_double(j, "mscale", where);
  r.mscale_all_dim = opt_double(j, "mscale_all_dim", where);
  r.truncate = get_or<bool>(j, "truncate", true, where);
  return r;
}

ModelConfig ModelConfig::from_file(const fs::path& dir_or_file) {
  fs::path file = fs::is_directory(dir_or_file) ? dir_or_file / "config.json" : dir_or_file;
  if (!fs::exists(file)) {
    if (!fs::exists(dir_or_file))
      fail(dir_or_file.string(), ": no such model folder (model.path must name a Hugging Face model folder)");
    fail(file.string(), ": missing (a Hugging Face model folder holds config.json beside its safetensors)");
  }
  std::ifstream in(file);
  if (!in) fail(file.string(), ": cannot be read");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    fail(file.string(), ": not valid JSON (", e.what(), ")");
  }
  ModelConfig c = from_json(j, file.string());
  c.source = file;
  return c;
}

namespace {

int64_t require_int(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) fail(where, ": missing or non-integer \"", key, "\"");
  return it->get<int64_t>();
}

void read_special_tokens(const json& j, const std::string& where, ModelConfig& c) {
  c.bos_token_id = get_or<int64_t>(j, "bos_token_id", -1, where);
  if (j.contains("eos_token_id")) {
    const json& e = j["eos_token_id"];
    if (e.is_number_integer()) c.eos_token_ids = {e.get<int64_t>()};
    else if (e.is_array()) c.eos_token_ids = e.get<std::vector<int64_t>>();
  }
  c.torch_dtype = get_or<std::string>(j, "torch_dtype", "", where);
}

// An option whose value changes the math in a way this implementation does not follow.
template <class T>
void reject_unless(const json& obj, const char* key, const T& supported, const std::string& where,
                   const std::string& prefix, const std::string& why) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return;
  bool ok = false;
  try {
    ok = it->get<T>() == supported;
  } catch (const json::exception&) {
  }
  if (!ok) fail(where, ": ", prefix, key, "=", it->dump(), " is not supported (", why, ")");
}

// MosaicML MPT (HF MptConfig / llm-foundry): ALiBi, LayerNorm, fused Wqkv, GELU MLP, tied head.
ModelConfig mpt_from_json(const json& j, const std::string& where) {
  ModelConfig c;
  c.model_type = "mpt";
  c.hidden_size = require_int(j, "d_model", where);
  c.n_head = require_int(j, "n_heads", where);
  c.n_head_kv = c.n_head;
  c.n_layer = require_int(j, "n_layers", where);
  c.vocab_size = require_int(j, "vocab_size", where);
  c.max_position_embeddings = get_or<int64_t>(j, "max_seq_len", 2048, where);
  if (c.n_head <= 0 || c.hidden_size % c.n_head != 0)
    fail(where, ": d_model (", c.hidden_size, ") must be a multiple of n_heads (", c.n_head, ")");
  c.head_dim = c.hidden_size / c.n_head;
  const double ratio = get_or<double>(j, "expansion_ratio", 4.0, where);
  const double inter = ratio * static_cast<double>(c.hidden_size);
  if (ratio <= 0 || inter != std::floor(inter))
    fail(where, ": expansion_ratio (", ratio, ") times d_model (", c.hidden_size, ") must be a positive integer");
  c.intermediate_size = static_cast<int64_t>(inter);
  c.no_bias = get_or<bool>(j, "no_bias", true, where);
  c.layer_norm_eps = get_or<double>(j, "layer_norm_epsilon", 1e-5, where);
  c.tie_word_embeddings = true;
  reject_unless<bool>(j, "tie_word_embeddings", true, where, "", "MPT ties its head to transformer.wte");
  const std::string norm = get_or<std::string>(j, "norm_type", "low_precision_layernorm", where);
  if (norm != "low_precision_layernorm" && norm != "layernorm")
    fail(where, ": norm_type=\"", norm, "\" is not supported (supported: low_precision_layernorm, layernorm)");
  auto lit = j.find("logit_scale");
  if (lit != j.end() && !lit->is_null()) fail(where, ": logit_scale=", lit->dump(), " is not supported (use null)");
  c.hidden_act = "gelu";
  if (j.contains("ffn_config") && j["ffn_config"].is_object()) {
    const json& f = j["ffn_config"];
    reject_unless<std::string>(f, "ffn_type", "mptmlp", where, "ffn_config.", "supported: mptmlp");
    if (f.contains("ffn_act_fn") && !f["ffn_act_fn"].is_null())
      fail(where, ": ffn_config.ffn_act_fn=", f["ffn_act_fn"].dump(), " is not supported (exact GELU only)");
  }
  const json a = j.contains("attn_config") && j["attn_config"].is_object() ? j["attn_config"] : json::object();
  c.alibi = get_or<bool>(a, "alibi", false, where);
  if (!c.alibi)
    fail(where, ": attn_config.alibi=false (learned position embeddings) is not supported; lminf runs ALiBi MPT models");
  c.alibi_bias_max = get_or<double>(a, "alibi_bias_max", 8.0, where);
  if (a.contains("clip_qkv") && !a["clip_qkv"].is_null()) c.clip_qkv = get_or<double>(a, "clip_qkv", 0.0, where);
  reject_unless<bool>(a, "qk_ln", false, where, "attn_config.", "LayerNorm on q and k");
  reject_unless<bool>(a, "prefix_lm", false, where, "attn_config.", "prefix-LM masks");
  reject_unless<bool>(a, "rope", false, where, "attn_config.", "rotary MPT");
  reject_unless<bool>(a, "qk_gn", false, where, "attn_config.", "GroupNorm on q and k");
  reject_unless<int64_t>(a, "sliding_window_size", -1, where, "attn_config.", "sliding-window MPT");
  reject_unless<std::string>(a, "attn_type", "multihead_attention", where, "attn_config.",
                             "supported: multihead_attention");
  auto ss = a.find("softmax_scale");
  if (ss != a.end() && !ss->is_null())
    fail(where, ": attn_config.softmax_scale=", ss->dump(), " is not supported (null: 1/sqrt(head_dim))");
  auto impl = a.find("attn_impl");
  if (impl != a.end() && !impl->is_null()) {
    const std::string v = impl->is_string() ? impl->get<std::string>() : impl->dump();
    if (v != "torch" && v != "flash" && v != "triton")
      fail(where, ": attn_config.attn_impl=", impl->dump(), " is not supported (torch, flash, triton: the same math)");
  }
  read_special_tokens(j, where, c);
  return c;
}

// EleutherAI GPT-J (HF GPTJConfig): partial interleaved rotary, parallel attention + MLP on one
// LayerNorm, gelu_new MLP with biases, untied head with a bias.
ModelConfig gptj_from_json(const json& j, const std::string& where) {
  ModelConfig c;
  c.model_type = "gptj";
  c.hidden_size = require_int(j, "n_embd", where);
  c.n_head = require_int(j, "n_head", where);
  c.n_head_kv = c.n_head;
  c.n_layer = require_int(j, "n_layer", where);
  c.vocab_size = require_int(j, "vocab_size", where);
  c.max_position_embeddings = get_or<int64_t>(j, "n_positions", 2048, where);
  if (c.n_head <= 0 || c.hidden_size % c.n_head != 0)
    fail(where, ": n_embd (", c.hidden_size, ") must be a multiple of n_head (", c.n_head, ")");
  c.head_dim = c.hidden_size / c.n_head;
  c.intermediate_size = get_or<int64_t>(j, "n_inner", 4 * c.hidden_size, where);
  c.rotary_dim = get_or<int64_t>(j, "rotary_dim", c.head_dim, where);
  c.rope_interleaved = true;
  c.hidden_act = get_or<std::string>(j, "activation_function", "gelu_new", where);
  c.layer_norm_eps = get_or<double>(j, "layer_norm_epsilon", 1e-5, where);
  c.tie_word_embeddings = false;
  reject_unless<bool>(j, "tie_word_embeddings", false, where, "", "GPT-J's head is lm_head.weight with a bias");
  c.lm_head_bias = true;
  read_special_tokens(j, where, c);
  return c;
}

}  // namespace

ModelConfig ModelConfig::from_json(const json& j, const std::string& where) {
  if (!j.is_object()) fail(where, ": expected a JSON object");
  ModelConfig c;
  c.model_type = get_or<std::string>(j, "model_type", "", where);
  if (c.model_type.empty()) fail(where, ": no \"model_type\" key (is this a Hugging Face config.json?)");
  if (c.model_type == "mpt" || c.model_type == "gptj") {
    c = c.model_type == "mpt" ? mpt_from_json(j, where) : gptj_from_json(j, where);
    c.validate(where);
    return c;
  }
  if (c.model_type != "llama" && c.model_type != "mistral") {
    fail(where, ": model_type \"", c.model_type, "\" is not supported (supported: llama, mistral, mpt, gptj)");
  }
  auto require = [&](const char* key) -> int64_t { return require_int(j, key, where); };
  c.hidden_size = require("hidden_size");
  c.intermediate_size = require("intermediate_size");
  c.n_layer = require("num_hidden_layers");
  c.n_head = require("num_attention_heads");
  c.n_head_kv = get_or<int64_t>(j, "num_key_value_heads", c.n_head, where);
  c.vocab_size = require("vocab_size");
  c.head_dim = get_or<int64_t>(j, "head_dim", c.n_head > 0 ? c.hidden_size / c.n_head : 0, where);
  c.max_position_embeddings = get_or<int64_t>(j, "max_position_embeddings", 2048, where);
  c.rms_norm_eps = get_or<double>(j, "rms_norm_eps", 1e-6, where);
  c.rope_theta = get_or<double>(j, "rope_theta", 10000.0, where);
  if (j.contains("rope_scaling")) c.rope_scaling = RopeScaling::from_json(j["rope_scaling"], where);
  c.tie_word_embeddings = get_or<bool>(j, "tie_word_embeddings", false, where);
  c.attention_bias = get_or<bool>(j, "attention_bias", false, where);
  c.mlp_bias = get_or<bool>(j, "mlp_bias", false, where);
  c.hidden_act = get_or<std::string>(j, "hidden_act", "silu", where);
  if (j.contains("sliding_window") && !j["sliding_window"].is_null())
    c.sliding_window = j["sliding_window"].get<int64_t>();
  read_special_tokens(j, where, c);
  c.validate(where);
  return c;
}

void ModelConfig::validate(const std::string& where) const {
  auto positive = [&](const char* key, int64_t v) {
    if (v <= 0) fail(where, ": \"", key, "\" must be > 0, got ", v);
  };
  positive("hidden_size", hidden_size);
  positive("intermediate_size", intermediate_size);
  positive("num_hidden_layers", n_layer);
  positive("num_attention_heads", n_head);
  positive("num_key_value_heads", n_head_kv);
  positive("head_dim", head_dim);
  positive("vocab_size", vocab_size);
  positive("max_position_embeddings", max_position_embeddings);
  if (n_head % n_head_kv != 0)
    fail(where, ": num_attention_heads (", n_head, ") must be a multiple of num_key_value_heads (", n_head_kv, ")");
  if (model_type == "mpt") {
    if (!alibi) fail(where, ": attn_config.alibi must be true (lminf runs ALiBi MPT models)");
    if (alibi_bias_max <= 0) fail(where, ": attn_config.alibi_bias_max must be > 0, got ", alibi_bias_max);
    if (clip_qkv && *clip_qkv <= 0) fail(where, ": attn_config.clip_qkv must be > 0 or null, got ", *clip_qkv);
    if (hidden_act != "gelu") fail(where, ": MPT's MLP is exact GELU, got \"", hidden_act, "\"");
    if (layer_norm_eps <= 0) fail(where, ": layer_norm_epsilon must be > 0");
    return;
  }
  const std::string rot_key = model_type == "gptj" ? "rotary_dim" : "head_dim";
  if (rotary_dims() % 2 != 0 || rotary_dims() > head_dim)
    fail(where, ": ", rot_key, " (", rotary_dims(), ") must be even and <= the head dimension (", head_dim, ")");
  if (model_type == "gptj") {
    if (hidden_act != "gelu_new" && hidden_act != "gelu")
      fail(where, ": activation_function \"", hidden_act, "\" is not supported for gptj (supported: gelu_new, gelu)");
    if (layer_norm_eps <= 0) fail(where, ": layer_norm_epsilon must be > 0");
    return;
  }
  if (hidden_act != "silu")
    fail(where, ": hidden_act \"", hidden_act, "\" is not supported for ", model_type, " (supported: silu)");
  if (rms_norm_eps <= 0) fail(where, ": rms_norm_eps must be > 0");
  if (rope_theta <= 1.0) fail(where, ": rope_theta must be > 1, got ", rope_theta);
  if (sliding_window && *sliding_window <= 0) fail(where, ": sliding_window must be > 0 or null");
}

json ModelConfig::to_json() const {
  json j;
  auto special = [&] {
    j["bos_token_id"] = bos_token_id;
    if (eos_token_ids.size() == 1) j["eos_token_id"] = eos_token_ids[0];
    else j["eos_token_id"] = eos_token_ids;
    j["torch_dtype"] = torch_dtype.empty() ? "float32" : torch_dtype;
  };
  if (model_type == "mpt") {
    j["architectures"] = {"MPTForCausalLM"};
    j["model_type"] = "mpt";
    j["d_model"] = hidden_size;
    j["n_heads"] = n_head;
    j["n_layers"] = n_layer;
    j["expansion_ratio"] = intermediate_size % hidden_size == 0 ? json(intermediate_size / hidden_size)
                                                                 : json(double(intermediate_size) / double(hidden_size));
    j["max_seq_len"] = max_position_embeddings;
    j["vocab_size"] = vocab_size;
    j["no_bias"] = no_bias;
    j["layer_norm_epsilon"] = layer_norm_eps;
    j["norm_type"] = "low_precision_layernorm";
    j["learned_pos_emb"] = true;
    j["logit_scale"] = nullptr;
    j["attn_config"] = {{"alibi", alibi},      {"alibi_bias_max", alibi_bias_max},
                        {"attn_impl", "torch"}, {"clip_qkv", clip_qkv ? json(*clip_qkv) : json(nullptr)},
                        {"qk_ln", false},       {"prefix_lm", false},
                        {"softmax_scale", nullptr}, {"attn_type", "multihead_attention"}};
    special();
    return j;
  }
  if (model_type == "gptj") {
    j["architectures"] = {"GPTJForCausalLM"};
    j["model_type"] = "gptj";
    j["n_embd"] = hidden_size;
    j["n_head"] = n_head;
    j["n_layer"] = n_layer;
    j["n_inner"] = intermediate_size;
    j["n_positions"] = max_position_embeddings;
    j["rotary_dim"] = rotary_dims();
    j["vocab_size"] = vocab_size;
    j["activation_function"] = hidden_act;
    j["layer_norm_epsilon"] = layer_norm_eps;
    j["tie_word_embeddings"] = false;
    special();
    return j;
  }
  j["architectures"] = {model_type == "mistral" ? "MistralForCausalLM" : "LlamaForCausalLM"};
  j["model_type"] = model_type;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = n_layer;
  j["num_attention_heads"] = n_head;
  j["num_key_value_heads"] = n_head_kv;
  j["head_dim"] = head_dim;
  j["vocab_size"] = vocab_size;
  j["max_position_embeddings"] = max_position_embeddings;
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_theta"] = rope_theta;
  j["rope_scaling"] = rope_scaling.to_json();
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["attention_bias"] = attention_bias;
  j["mlp_bias"] = mlp_bias;
  j["hidden_act"] = hidden_act;
  j["sliding_window"] = sliding_window ? json(*sliding_window) : json(nullptr);
  j["bos_token_id"] = bos_token_id;
  if (eos_token_ids.size() == 1) j["eos_token_id"] = eos_token_ids[0];
  else j["eos_token_id"] = eos_token_ids;
  j["torch_dtype"] = torch_dtype.empty() ? "float32" : torch_dtype;
  return j;
}

int64_t ModelConfig::n_params() const {
  const int64_t h = hidden_size, I = intermediate_size, V = vocab_size;
  if (model_type == "mpt") {
    int64_t per_layer = 4 * h * h + 2 * h * I + 2 * h;
    if (!no_bias) per_layer += 3 * h + h + I + h + 2 * h;
    return n_layer * per_layer + V * h + h * (no_bias ? 1 : 2);
  }
  if (model_type == "gptj") {
    const int64_t per_layer = 4 * h * h + 2 * h * I + I + h + 2 * h;
    return n_layer * per_layer + 2 * V * h + V + 2 * h;
  }
  const int64_t q = n_head * head_dim, kv = n_head_kv * head_dim;
  int64_t per_layer = hidden_size * (q + 2 * kv) + q * hidden_size + 3 * hidden_size * intermediate_size +
                      2 * hidden_size;
  if (attention_bias) per_layer += q + 2 * kv + hidden_size;
  int64_t total = n_layer * per_layer + vocab_size * hidden_size + hidden_size;
  if (!tie_word_embeddings) total += vocab_size * hidden_size;
  return total;
}

}  // namespace lminf
