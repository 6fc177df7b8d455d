// The shared config.json helpers (config_json.h).
#include "framework/transformer/config_json.h"

namespace lminf {
using nlohmann::json;

int64_t require_int(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) fail(where, ": missing or non-integer \"", key, "\"");
  if (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t{std::numeric_limits<int64_t>::max()})
    fail(where, ": \"", key, "\" is too large (", it->dump(), ")");
  return it->get<int64_t>();
}

void read_keys(const json& j, const std::vector<ConfigKey>& keys, const std::string& where, ModelConfig& c) {
  for (const ConfigKey& k : keys) {
    std::visit(
        [&](auto member) {
          using T = std::decay_t<decltype(c.*member)>;
          if constexpr (std::is_same_v<T, int64_t>) {
            if (k.required) {
              c.*member = require_int(j, k.key, where);
              return;
            }
          }
          c.*member = get_or<T>(j, k.key, c.*member, where);
        },
        k.member);
  }
}

void write_keys(const ModelConfig& c, const std::vector<ConfigKey>& keys, json& j) {
  for (const ConfigKey& k : keys) std::visit([&](auto member) { j[k.key] = c.*member; }, k.member);
}

void read_mha_sizes(const json& j, const MhaKeys& keys, const std::string& where, ModelConfig& c) {
  c.hidden_size = require_int(j, keys.hidden, where);
  c.n_head = require_int(j, keys.heads, where);
  c.n_head_kv = c.n_head;
  c.n_layer = require_int(j, keys.layers, where);
  c.vocab_size = require_int(j, "vocab_size", where);
  c.max_position_embeddings = get_or<int64_t>(j, keys.positions, 2048, where);
  if (c.n_head <= 0 || c.hidden_size % c.n_head != 0)
    fail(where, ": ", keys.hidden, " (", c.hidden_size, ") must be a multiple of ", keys.heads, " (", c.n_head, ")");
  c.head_dim = c.hidden_size / c.n_head;
}

json mha_config_json(const ModelConfig& c, const std::string& architecture, const MhaKeys& sizes,
                     const std::vector<ConfigKey>& options) {
  json j;
  j["architectures"] = {architecture};
  write_mha_sizes(c, sizes, j);
  write_keys(c, options, j);
  return j;
}

void write_mha_sizes(const ModelConfig& c, const MhaKeys& keys, json& j) {
  j[keys.hidden] = c.hidden_size;
  j[keys.heads] = c.n_head;
  j[keys.layers] = c.n_layer;
  j[keys.positions] = c.max_position_embeddings;
  j["vocab_size"] = c.vocab_size;
}

std::string json_excerpt(const json& j) {
  std::string s = j.dump();
  return s.size() <= 80 ? s : s.substr(0, 77) + "...";
}

void read_special_tokens(const json& j, const std::string& where, ModelConfig& c) {
  const auto bos = j.find("bos_token_id");
  if (bos != j.end() && !bos->is_null() && !bos->is_number_integer())
    fail(where, ": \"bos_token_id\" must be an integer id or null, got ", json_excerpt(*bos));
  c.bos_token_id = bos == j.end() || bos->is_null() ? -1 : bos->get<int64_t>();
  if (j.contains("eos_token_id")) {
    const json& e = j["eos_token_id"];
    auto bad = [&] { fail(where, ": \"eos_token_id\" must be an integer id, a list of them or null, got ", json_excerpt(e)); };
    if (e.is_number_integer()) {
      c.eos_token_ids = {e.get<int64_t>()};
    } else if (e.is_array()) {
      for (const json& id : e) if (!id.is_number_integer()) bad();
      c.eos_token_ids = e.get<std::vector<int64_t>>();
    } else if (!e.is_null()) {
      bad();
    }
  }
  c.torch_dtype = get_or<std::string>(j, "torch_dtype", "", where);
}

void write_special_tokens(const ModelConfig& c, json& j) {
  j["bos_token_id"] = c.bos_token_id;
  if (c.eos_token_ids.size() == 1) j["eos_token_id"] = c.eos_token_ids[0];
  else j["eos_token_id"] = c.eos_token_ids;
  j["torch_dtype"] = c.torch_dtype.empty() ? "float32" : c.torch_dtype;
}

}  // namespace lminf
