// Hugging Face config.json <-> ModelConfig, through the family of its model_type: each family reads
// and writes its own keys (models/families/*.cpp). Unsupported values are errors that name the file
// and the key, before any weight is read.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "framework/transformer/model_config.h"

namespace lminf {

// Reads DIR/config.json (or a config.json path) and validates it; `source` is set to the file.
ModelConfig load_model_config(const std::filesystem::path& dir_or_file);
// Reads and validates a config.json object; `where` names its source for errors ("DIR/config.json").
ModelConfig model_config_from_json(const nlohmann::json& j, const std::string& where);
// An HF-compatible config.json in the family's own keys.
nlohmann::json model_config_to_json(const ModelConfig& c);

}  // namespace lminf
