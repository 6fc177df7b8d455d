// Reading JSON a user gives lminf (config.json, tokenizer.json, safetensors headers, JSONL records)
// with bounded nesting: objects and arrays may nest at most kMaxJsonDepth deep. nlohmann's parser is
// iterative, but dump(), copies and comparisons recurse, so a record nested 10^5 deep would overflow
// the stack later, far from the file that caused it.
#pragma once

#include <filesystem>
#include <istream>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace lminf {

inline constexpr int kMaxJsonDepth = 100;

// Parses `text`; on malformed or too deeply nested JSON returns nullopt and sets `error` to a
// sentence without nlohmann's internal prefixes ("syntax error at byte 12: ...", "objects and arrays
// nested deeper than 100 levels, the most lminf reads").
std::optional<nlohmann::json> try_parse_json(std::string_view text, std::string& error);
std::optional<nlohmann::json> try_parse_json(std::istream& in, std::string& error);

// As above; throws Error "where: not valid JSON (ERROR)HINT" instead.
nlohmann::json parse_json(std::string_view text, const std::string& where, const std::string& hint = "");
// The whole file (Error naming it when it cannot be read, is malformed or nests too deep).
nlohmann::json read_json_file(const std::filesystem::path& file, const std::string& hint = "");

// An nlohmann exception's message without its "[json.exception.type_error.302] " prefix.
std::string json_error_text(const std::exception& e);

}  // namespace lminf
