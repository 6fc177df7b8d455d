// The parts of a Hugging Face tokenizer.json pipeline (framework/text/hf_tokenizer.h), each parsed
// from its JSON object into a function: normalizer (text -> text), pre-tokenizer (text -> pieces),
// decoder (tokens -> text pieces). Internal to the tokenizer; not a public interface.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "framework/text/unicode_regex.h"

namespace lminf::hf_steps {

using json = nlohmann::json;

// A string field of `j` (fallback when absent or null); errors name `where` when it is not a string.
std::string str_field(const json& j, const char* key, const std::string& where, const std::string& fallback = "");
// A boolean field of `j` (fallback when absent, null or not a boolean).
bool bool_field(const json& j, const char* key, bool fallback);
// Rust's char::is_alphanumeric at byte i of s, for single_word added tokens (PCRE2's \w minus '_').
bool is_word_char(std::string_view s, size_t i, const UnicodeRegex& word);

// A pre-tokenized piece; at_start: it begins at offset 0 of the original text (Metaspace "first").
struct Piece {
  std::string text;
  bool at_start = false;
};

using Normalizer = std::function<std::string(const std::string&)>;
struct NormalizerInfo {
  Normalizer fn;
  bool lossy = false;  // loses information (decode cannot restore the text)
};
NormalizerInfo parse_normalizer(const json& j, const std::string& where);

using PreTokenizer = std::function<void(std::vector<Piece>&)>;
struct PreTokenizerInfo {
  PreTokenizer fn;
  bool byte_level = false;
};
PreTokenizerInfo parse_pre_tokenizer(const json& j, const std::string& where);

using Decoder = std::function<void(std::vector<std::string>&)>;
Decoder parse_decoder(const json& j, const std::string& where);

}  // namespace lminf::hf_steps
