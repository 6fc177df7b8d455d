// RopeScaling's HF JSON and the family-neutral checks of ModelConfig.
#include "framework/transformer/model_config.h"

#include "framework/core/error.h"
#include "framework/transformer/config_json.h"

namespace lminf {
using nlohmann::json;

namespace {

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

void ModelConfig::check_sizes(const std::string& where) const {
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
}

void ModelConfig::check_rotary_dims(const std::string& where, const std::string& key) const {
  if (rotary_dims() % 2 != 0 || rotary_dims() > head_dim)
    fail(where, ": ", key, " (", rotary_dims(), ") must be even and <= the head dimension (", head_dim, ")");
}

}  // namespace lminf
