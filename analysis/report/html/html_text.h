// Text for the report page: every string taken from a file goes through html_escape before it
// reaches the page, images become data URIs, JSON values become table cells.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace lminf {

// `s` with & < > " ' replaced by character references: safe as element text and as a quoted
// attribute value. Invalid UTF-8 is passed through (the browser shows U+FFFD for it).
std::string html_escape(std::string_view s);

// RFC 4648 base64 (with '=' padding) of `bytes`.
std::string base64_encode(std::string_view bytes);

// "data:<mime>;base64,<bytes in base64>".
std::string data_uri(const std::string& mime, std::string_view bytes);

// A JSON value as the text of one table cell (not yet escaped): strings as they are, integers
// exactly, reals with 6 significant digits, booleans true/false, null as "", and arrays and objects
// as compact JSON, cut to `max_chars` characters with "..." appended.
std::string json_cell_text(const nlohmann::ordered_json& v, size_t max_chars = 240);

// The member names of a JSON object in the order to show them: file order, except that members
// whose names are all integers ("15", "127", "1023": distances, lengths) come in numeric order.
std::vector<std::string> member_order(const nlohmann::ordered_json& object);

// Whether `text` reads as a number in a table column: a real, an integer, nan, inf or -inf.
bool is_numeric_text(const std::string& text);

}  // namespace lminf
