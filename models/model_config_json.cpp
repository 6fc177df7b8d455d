// config.json through the families table (model_config_json.h).
#include "models/model_config_json.h"

#include "framework/core/error.h"
#include "framework/io/json_file.h"
#include "framework/transformer/config_json.h"
#include "models/model_families.h"

namespace lminf {
namespace fs = std::filesystem;
using nlohmann::json;

ModelConfig load_model_config(const fs::path& dir_or_file) {
  fs::path file = fs::is_directory(dir_or_file) ? dir_or_file / "config.json" : dir_or_file;
  if (!fs::exists(file)) {
    if (!fs::exists(dir_or_file))
      fail(dir_or_file.string(), ": no such model folder (model.path must name a Hugging Face model folder)");
    fail(file.string(), ": missing (a Hugging Face model folder holds config.json beside its safetensors)");
  }
  const json j = read_json_file(file);
  ModelConfig c = model_config_from_json(j, file.string());
  c.source = file;
  return c;
}

ModelConfig model_config_from_json(const json& j, const std::string& where) {
  if (!j.is_object()) fail(where, ": expected a JSON object");
  const std::string model_type = get_or<std::string>(j, "model_type", "", where);
  if (model_type.empty()) fail(where, ": no \"model_type\" key (is this a Hugging Face config.json?)");
  ModelConfig c;
  try {
    c = find_family(model_type, where).from_json(j, where);
  } catch (const json::exception& e) {  // a type a family's reader did not check: still the file's fault
    fail(where, ": a key has an unexpected type or value (", json_error_text(e), ")");
  }
  c.model_type = model_type;
  read_special_tokens(j, where, c);  // the same keys in every family
  validate_model_config(c, where);
  return c;
}

json model_config_to_json(const ModelConfig& c) {
  json j = find_family(c.model_type, "model config").to_json(c);
  j["model_type"] = c.model_type;
  write_special_tokens(c, j);
  return j;
}

}  // namespace lminf
