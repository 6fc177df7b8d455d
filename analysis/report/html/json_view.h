// Any JSON object as HTML, with no knowledge of the task that wrote it, so a results.json of a task
// added later shows up in the report unchanged:
//   - scalars and arrays of scalars: one key/value table;
//   - an array of records (objects; nested objects flattened to dotted columns, "full.bleu"): a table;
//   - a nested object, or an array of records that themselves hold records: a sub-section each.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/report/html/html_table.h"

namespace lminf {

// The most rows a table of records shows (the rest are counted in its caption).
inline constexpr size_t kMaxTableRows = 5000;

// Whether `v` is an array of objects that flattens into a table (no member, after flattening nested
// objects, is itself an array of objects).
bool is_record_array(const nlohmann::ordered_json& v);

// `records` with the members of nested objects lifted into dotted keys ({"a": {"b": 1}} -> {"a.b": 1}).
nlohmann::ordered_json flatten_records(const nlohmann::ordered_json& records);

// The object rendered by the rules above under a heading <h`level`> titled `title` ("" for none);
// members named in `skip` are left out.
std::string render_json_object(const nlohmann::ordered_json& object, const std::string& title, int level,
                               const std::vector<std::string>& skip = {});

}  // namespace lminf
