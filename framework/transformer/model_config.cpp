// RopeScaling's HF JSON and the family-neutral checks of ModelConfig.
#include "framework/transformer/model_config.h"

#include <cmath>

#include "framework/core/error.h"
#include "framework/transformer/config_json.h"

namespace lminf {
using nlohmann::json;

namespace {

// rope_scaling.KEY as a finite number (absent or null: nullopt).
std::optional<double> opt_double(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number() || !std::isfinite(it->get<double>()))
    fail(where, ": rope_scaling.", key, " must be a finite number, got ", it->dump());
  return it->get<double>();
}

std::optional<int64_t> opt_positive_int(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer() || it->get<int64_t>() <= 0 || it->get<int64_t>() > kMaxPositions)
    fail(where, ": rope_scaling.", key, " must be an integer in [1, ", kMaxPositions, "], got ", it->dump());
  return it->get<int64_t>();
}

std::string type_of(const json& j, const std::string& where) {
  for (const char* key : {"rope_type", "type"}) {
    auto it = j.find(key);
    if (it == j.end()) continue;
    if (!it->is_string())
      fail(where, ": rope_scaling.", key, " must be a string (default, linear, dynamic, yarn, llama3), got ",
           it->dump());
    return it->get<std::string>();
  }
  fail(where, ": rope_scaling has no \"rope_type\" (or \"type\") key");
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
  const std::string type = type_of(j, where);
  if (type == "default") return r;
  if (type != "linear" && type != "dynamic" && type != "yarn" && type != "llama3") {
    fail(where, ": rope_scaling type \"", type,
         "\" is not supported (supported: default, linear, dynamic, yarn, llama3)");
  }
  r.type = type;
  const std::optional<double> factor = opt_double(j, "factor", where);
  if (!factor) fail(where, ": rope_scaling.factor is required for type ", type);
  r.factor = *factor;
  if (r.factor < 1.0 && type != "linear") fail(where, ": rope_scaling.factor must be >= 1, got ", r.factor);
  if (r.factor <= 0.0) fail(where, ": rope_scaling.factor must be > 0, got ", r.factor);
  if (r.factor > kMaxPositions)
    fail(where, ": rope_scaling.factor must be <= ", kMaxPositions, " (a context that many times the trained one), got ",
         r.factor);
  r.original_max_position_embeddings = opt_positive_int(j, "original_max_position_embeddings", where);
  if (type == "llama3") {
    r.low_freq_factor = opt_double(j, "low_freq_factor", where).value_or(1.0);
    r.high_freq_factor = opt_double(j, "high_freq_factor", where).value_or(4.0);
    if (r.low_freq_factor <= 0) fail(where, ": rope_scaling.low_freq_factor must be > 0, got ", r.low_freq_factor);
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
  for (const auto& [key, v] : {std::pair<const char*, const std::optional<double>&>{"beta_fast", r.beta_fast},
                               {"beta_slow", r.beta_slow}})
    if (v && !(*v > 0)) fail(where, ": rope_scaling.", key, " must be > 0, got ", *v);
  r.truncate = get_or<bool>(j, "truncate", true, where + ": rope_scaling");
  return r;
}

void ModelConfig::check_sizes(const std::string& where) const {
  auto in_range = [&](const char* key, int64_t v, int64_t max) {
    if (v <= 0 || v > max) fail(where, ": \"", key, "\" must be in [1, ", max, "], got ", v);
  };
  in_range("hidden_size", hidden_size, kMaxHiddenSize);
  in_range("intermediate_size", intermediate_size, kMaxIntermediateSize);
  in_range("num_hidden_layers", n_layer, kMaxLayers);
  in_range("num_attention_heads", n_head, kMaxHeads);
  in_range("num_key_value_heads", n_head_kv, kMaxHeads);
  in_range("head_dim", head_dim, kMaxHiddenSize);
  in_range("vocab_size", vocab_size, kMaxVocab);
  in_range("max_position_embeddings", max_position_embeddings, kMaxPositions);
  if (n_head % n_head_kv != 0)
    fail(where, ": num_attention_heads (", n_head, ") must be a multiple of num_key_value_heads (", n_head_kv, ")");
  if (n_head * head_dim > 4 * kMaxHiddenSize)
    fail(where, ": num_attention_heads x head_dim (", n_head, " x ", head_dim, ") must be at most ", 4 * kMaxHiddenSize);
  if (bos_token_id < -1 || bos_token_id >= vocab_size)
    fail(where, ": \"bos_token_id\" ", bos_token_id, " is outside the vocabulary (vocab_size ", vocab_size,
         ": ids 0..", vocab_size - 1, ", or null for none)");
  for (int64_t id : eos_token_ids)
    if (id < 0 || id >= vocab_size)
      fail(where, ": \"eos_token_id\" ", id, " is outside the vocabulary (vocab_size ", vocab_size, ": ids 0..",
           vocab_size - 1, ")");
  auto finite = [&](const char* key, double v) {
    if (!std::isfinite(v)) fail(where, ": \"", key, "\" must be a finite number, got ", v);
  };
  finite("rope_theta", rope_theta);
  finite("rms_norm_eps", rms_norm_eps);
  finite("layer_norm_epsilon", layer_norm_eps);
  finite("alibi_bias_max", alibi_bias_max);
  if (clip_qkv) finite("clip_qkv", *clip_qkv);
}

void ModelConfig::check_rotary_dims(const std::string& where, const std::string& key) const {
  if (rotary_dims() % 2 != 0 || rotary_dims() > head_dim)
    fail(where, ": ", key, " (", rotary_dims(), ") must be even and <= the head dimension (", head_dim, ")");
}

}  // namespace lminf
