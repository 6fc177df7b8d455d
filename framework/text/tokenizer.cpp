#include "framework/text/tokenizer.h"

#include <fstream>

#include <nlohmann/json.hpp>

#include "framework/core/error.h"
#include "framework/io/json_file.h"
#include "framework/text/hf_tokenizer.h"
#include "framework/transformer/model_config.h"
#include "framework/text/sentencepiece_tokenizer.h"

namespace lminf {
namespace fs = std::filesystem;

namespace {

// A token entry of tokenizer_config.json: "<s>", {"content": "<s>", ...} or null.
std::optional<std::string> token_entry(const nlohmann::json& j, const char* key, const fs::path& file) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  const auto& v = j[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  fail(file.string(), ": \"", key, "\" must be a string or an object with \"content\"");
}

std::optional<bool> bool_entry(const nlohmann::json& j, const char* key, const fs::path& file) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  if (!j[key].is_boolean()) fail(file.string(), ": \"", key, "\" must be true or false");
  return j[key].get<bool>();
}

}  // namespace

TokenizerConfig TokenizerConfig::from_dir(const fs::path& dir) {
  TokenizerConfig c;
  const fs::path file = dir / "tokenizer_config.json";
  if (!fs::exists(file)) return c;
  const nlohmann::json j = read_json_file(file);
  if (!j.is_object()) fail(file.string(), ": expected a JSON object");
  c.source = file;
  c.bos_token = token_entry(j, "bos_token", file);
  c.eos_token = token_entry(j, "eos_token", file);
  c.unk_token = token_entry(j, "unk_token", file);
  c.add_bos_token = bool_entry(j, "add_bos_token", file);
  c.add_eos_token = bool_entry(j, "add_eos_token", file);
  return c;
}

std::unique_ptr<Tokenizer> load_tokenizer(const fs::path& path) {
  if (!fs::exists(path))
    fail(path.string(), " does not exist (expected a model or tokenizer folder holding tokenizer.json or tokenizer.model)");
  fs::path dir = path, json_file, model_file;
  if (fs::is_directory(path)) {
    json_file = path / "tokenizer.json";
    model_file = path / "tokenizer.model";
  } else {
    dir = path.parent_path();
    if (path.extension() == ".json") json_file = path;
    else if (path.extension() == ".model") model_file = path;
    else fail(path.string(), ": expected a folder, a tokenizer.json or a SentencePiece .model file");
  }
  const TokenizerConfig config = TokenizerConfig::from_dir(dir.empty() ? fs::path(".") : dir);
  if (!json_file.empty() && fs::exists(json_file)) return HfTokenizer::from_file(json_file, config);
  if (!model_file.empty() && fs::exists(model_file)) return std::make_unique<SentencePieceTokenizer>(model_file, config);
  fail(path.string(), ": no tokenizer found (looked for tokenizer.json and tokenizer.model); copy the model's tokenizer ",
       "files there, point data.tokenizer at a folder that has them, or train one with lminf train-tokenizer");
}

void check_tokenizer_fits(const Tokenizer& tok, const ModelConfig& model, const std::string& where) {
  if (model.vocab_size > 0 && tok.vocab_size() > model.vocab_size)
    fail(where, ": the tokenizer ", tok.description(), " has ", tok.vocab_size(), " ids but the model ",
         model.source.empty() ? std::string("config") : model.source.string(), " has vocab_size ", model.vocab_size,
         ": they do not belong together (use the model's own tokenizer)");
}

}  // namespace lminf
