// Depth-bounded JSON parsing (json_file.h).
#include "framework/io/json_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "framework/core/error.h"

namespace lminf {
using nlohmann::json;

namespace {

struct TooDeep {};

// Iterative: the callback sees the depth of every value before the parser descends into it.
template <class Input>
std::optional<json> parse_bounded(Input&& input, std::string& error) {
  const json::parser_callback_t limit = [](int depth, json::parse_event_t event, json&) {
    if (depth >= kMaxJsonDepth && (event == json::parse_event_t::object_start || event == json::parse_event_t::array_start))
      throw TooDeep{};
    return true;
  };
  try {
    return json::parse(std::forward<Input>(input), limit);
  } catch (const TooDeep&) {
    error = "objects and arrays nested deeper than " + std::to_string(kMaxJsonDepth) + " levels, the most lminf reads";
  } catch (const json::exception& e) {
    error = json_error_text(e);
  }
  return std::nullopt;
}

}  // namespace

std::string json_error_text(const std::exception& e) {
  std::string s = e.what();
  if (s.rfind("[json.exception.", 0) == 0) {
    const auto close = s.find("] ");
    if (close != std::string::npos) s = s.substr(close + 2);
  }
  return s;
}

std::optional<json> try_parse_json(std::string_view text, std::string& error) {
  return parse_bounded(text, error);
}

std::optional<json> try_parse_json(std::istream& in, std::string& error) {
  return parse_bounded(in, error);
}

json parse_json(std::string_view text, const std::string& where, const std::string& hint) {
  std::string error;
  auto j = try_parse_json(text, error);
  if (!j) fail(where, ": not valid JSON (", error, ")", hint);
  return std::move(*j);
}

json read_json_file(const std::filesystem::path& file, const std::string& hint) {
  std::ifstream in(file, std::ios::binary);
  if (!in) fail(file.string(), ": cannot be read (", std::strerror(errno), ")");
  std::string error;
  auto j = try_parse_json(in, error);
  if (!j) fail(file.string(), ": not valid JSON (", error, ")", hint);
  return std::move(*j);
}

}  // namespace lminf
