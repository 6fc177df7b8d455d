// Reading and writing Hugging Face config.json values, for every family's parser (models/families):
// typed lookups with defaults, required integers, options refused unless they hold the one value
// implemented, and the special-token keys all families share. Errors name `where` and the key.
#pragma once

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "framework/core/error.h"
#include "framework/transformer/model_config.h"

namespace lminf {

// A value as JSON text for a message, cut to 80 characters.
std::string json_excerpt(const nlohmann::json& j);

// j[key] as T; `fallback` when the key is absent or null. Throws when it has another type (a number
// for a string, a fraction or a number out of range for an integer, NaN or infinity for a double).
template <class T>
T get_or(const nlohmann::json& j, const char* key, T fallback, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  bool ok = true;
  if constexpr (std::is_same_v<T, bool>) ok = it->is_boolean();
  else if constexpr (std::is_integral_v<T>)
    ok = it->is_number_integer() &&
         !(it->is_number_unsigned() && it->template get<uint64_t>() > uint64_t{std::numeric_limits<int64_t>::max()});
  else if constexpr (std::is_floating_point_v<T>) ok = it->is_number() && std::isfinite(it->template get<double>());
  else if constexpr (std::is_same_v<T, std::string>) ok = it->is_string();
  if (ok) {
    try {
      return it->get<T>();
    } catch (const nlohmann::json::exception&) {
    }
  }
  fail(where, ": key \"", key, "\" has the wrong type or value (", json_excerpt(*it), ")");
}

// j[key], which must be an integer.
int64_t require_int(const nlohmann::json& j, const char* key, const std::string& where);

// An option whose value changes the math in a way this implementation does not follow: refused unless
// absent, null or `supported`. The error reads "where: PREFIXkey=VALUE is not supported (why)".
template <class T>
void reject_unless(const nlohmann::json& obj, const char* key, const T& supported, const std::string& where,
                   const std::string& prefix, const std::string& why) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return;
  bool ok = false;
  try {
    ok = it->get<T>() == supported;
  } catch (const nlohmann::json::exception&) {
  }
  if (!ok) fail(where, ": ", prefix, key, "=", it->dump(), " is not supported (", why, ")");
}

// A config.json key that is one ModelConfig member, so a family names it once for reading and writing.
struct ConfigKey {
  const char* key;
  std::variant<int64_t ModelConfig::*, double ModelConfig::*, bool ModelConfig::*, std::string ModelConfig::*> member;
  bool required = false;  // else an absent or null key keeps the member's value (the default)
};
// Reads every key into its member (required integers with require_int); throws naming the key.
void read_keys(const nlohmann::json& j, const std::vector<ConfigKey>& keys, const std::string& where, ModelConfig& c);
// Writes every member under its key.
void write_keys(const ModelConfig& c, const std::vector<ConfigKey>& keys, nlohmann::json& j);

// The config.json names of the sizes of a family without kv groups (MPT: d_model, n_heads, n_layers,
// max_seq_len; GPT-J: n_embd, n_head, n_layer, n_positions).
struct MhaKeys {
  const char* hidden;
  const char* heads;
  const char* layers;
  const char* positions;  // optional, 2048 when absent
};
// Reads them and vocab_size into c: n_head_kv = n_head, head_dim = hidden / heads (which must divide).
void read_mha_sizes(const nlohmann::json& j, const MhaKeys& keys, const std::string& where, ModelConfig& c);
void write_mha_sizes(const ModelConfig& c, const MhaKeys& keys, nlohmann::json& j);
// The start of a multi-head (no GQA) family's config.json: its architecture, its size keys and its
// option keys.
nlohmann::json mha_config_json(const ModelConfig& c, const std::string& architecture, const MhaKeys& sizes,
                               const std::vector<ConfigKey>& options);

// bos_token_id, eos_token_id (one id or a list) and torch_dtype, the same keys in every family.
void read_special_tokens(const nlohmann::json& j, const std::string& where, ModelConfig& c);
void write_special_tokens(const ModelConfig& c, nlohmann::json& j);

}  // namespace lminf
