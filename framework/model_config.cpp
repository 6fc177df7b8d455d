#include "framework/model_config.h"

#include <fstream>

#include "framework/error.h"

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

ModelConfig ModelConfig::from_json(const json& j, const std::string& where) {
  if (!j.is_object()) fail(where, ": expected a JSON object");
  ModelConfig c;
  c.model_type = get_or<std::string>(j, "model_type", "", where);
  if (c.model_type.empty()) fail(where, ": no \"model_type\" key (is this a Hugging Face config.json?)");
  if (c.model_type != "llama" && c.model_type != "mistral") {
    fail(where, ": model_type \"", c.model_type, "\" is not supported (supported: llama, mistral)");
  }
  auto require = [&](const char* key) -> int64_t {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer()) fail(where, ": missing or non-integer \"", key, "\"");
    return it->get<int64_t>();
  };
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
  c.bos_token_id = get_or<int64_t>(j, "bos_token_id", -1, where);
  if (j.contains("eos_token_id")) {
    const json& e = j["eos_token_id"];
    if (e.is_number_integer()) c.eos_token_ids = {e.get<int64_t>()};
    else if (e.is_array()) c.eos_token_ids = e.get<std::vector<int64_t>>();
  }
  c.torch_dtype = get_or<std::string>(j, "torch_dtype", "", where);
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
  if (head_dim % 2 != 0) fail(where, ": head_dim (", head_dim, ") must be even for rotary embeddings");
  if (hidden_act != "silu")
    fail(where, ": hidden_act \"", hidden_act, "\" is not supported for ", model_type, " (supported: silu)");
  if (rms_norm_eps <= 0) fail(where, ": rms_norm_eps must be > 0");
  if (rope_theta <= 1.0) fail(where, ": rope_theta must be > 1, got ", rope_theta);
  if (sliding_window && *sliding_window <= 0) fail(where, ": sliding_window must be > 0 or null");
}

json ModelConfig::to_json() const {
  json j;
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
  const int64_t q = n_head * head_dim, kv = n_head_kv * head_dim;
  int64_t per_layer = hidden_size * (q + 2 * kv) + q * hidden_size + 3 * hidden_size * intermediate_size +
                      2 * hidden_size;
  if (attention_bias) per_layer += q + 2 * kv + hidden_size;
  int64_t total = n_layer * per_layer + vocab_size * hidden_size + hidden_size;
  if (!tie_word_embeddings) total += vocab_size * hidden_size;
  return total;
}

}  // namespace lminf
