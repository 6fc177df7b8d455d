#include "analysis/report/html/json_view.h"

#include <algorithm>

#include "analysis/report/html/html_text.h"

namespace lminf {
using nlohmann::ordered_json;

namespace {

bool is_scalar_like(const ordered_json& v) {
  if (v.is_primitive() || v.empty()) return true;  // an empty object or array is shown as {} or []
  if (!v.is_array()) return false;
  return std::all_of(v.begin(), v.end(), [](const ordered_json& e) { return e.is_primitive(); });
}

void flatten_into(const ordered_json& object, const std::string& prefix, ordered_json& out) {
  for (const std::string& k : member_order(object)) {
    const ordered_json& v = object[k];
    if (v.is_object() && !v.empty())
      flatten_into(v, prefix + k + ".", out);
    else
      out[prefix + k] = v;
  }
}

ordered_json flattened(const ordered_json& object) {
  ordered_json flat = ordered_json::object();
  flatten_into(object, "", flat);
  return flat;
}

std::string heading(const std::string& title, int level) {
  const std::string l = std::to_string(std::clamp(level, 2, 6));
  return title.empty() ? "" : "<h" + l + ">" + html_escape(title) + "</h" + l + ">";
}

// A sub-section's title for element i of array `key`: its label, name or task when it has one.
std::string element_title(const std::string& key, const ordered_json& e, size_t i) {
  for (const char* k : {"label", "name", "task"})
    if (e.is_object() && e.contains(k) && e[k].is_string()) return key + ": " + e[k].get<std::string>();
  return key + " [" + std::to_string(i) + "]";
}

std::string record_table_html(const ordered_json& records, const std::string& caption) {
  ordered_json shown = flatten_records(records);
  std::string cap = caption + " (" + std::to_string(records.size()) + " rows)";
  if (shown.size() > kMaxTableRows) {
    shown.erase(shown.begin() + static_cast<std::ptrdiff_t>(kMaxTableRows), shown.end());
    cap = caption + " (first " + std::to_string(kMaxTableRows) + " of " + std::to_string(records.size()) + " rows)";
  }
  return render_table(records_table(shown, cap));
}

// An object whose members are all objects that flatten into scalars and arrays of records, such as
// {layer_00: {lines: 32, bound_at_distance: {15: 3.6, ...}}, layer_01: {...}}: one table for them all.
bool is_table_of_objects(const ordered_json& v) {
  if (!v.is_object() || v.empty()) return false;
  for (const auto& member : v) {
    if (!member.is_object() || member.empty()) return false;
    for (const auto& x : flattened(member))
      if (!is_scalar_like(x) && !is_record_array(x)) return false;
  }
  return true;
}

// The members of such an object as rows (first column: the member's name, headed `key`), and each
// array of records they hold as one table of all members' records, the member's name leading.
std::string objects_table_html(const ordered_json& v, const std::string& key) {
  ordered_json scalar_rows = ordered_json::array();
  std::vector<std::string> record_keys;
  for (const std::string& name : member_order(v)) {
    ordered_json row = {{key, name}};
    const ordered_json flat = flattened(v[name]);
    for (const auto& [k, x] : flat.items()) {
      if (is_scalar_like(x))
        row[k] = x;
      else if (std::find(record_keys.begin(), record_keys.end(), k) == record_keys.end())
        record_keys.push_back(k);
    }
    if (row.size() > 1) scalar_rows.push_back(std::move(row));
  }
  std::string h = scalar_rows.empty() ? "" : render_table(records_table(scalar_rows, key));
  for (const std::string& rk : record_keys) {
    ordered_json rows = ordered_json::array();
    for (const std::string& name : member_order(v)) {
      const ordered_json flat = flattened(v[name]);
      if (!flat.contains(rk) || !is_record_array(flat[rk])) continue;
      for (const ordered_json& rec : flatten_records(flat[rk])) {
        ordered_json row = {{key, name}};
        for (const auto& [k, x] : rec.items()) row[k] = x;
        rows.push_back(std::move(row));
      }
    }
    h += record_table_html(rows, key + " / " + rk);
  }
  return h;
}

// A member that is neither scalar-like nor a table of records: a sub-section (or several).
std::string structured_member_html(const std::string& key, const ordered_json& v, int level) {
  if (is_table_of_objects(v))
    return "<div class=\"sub\">" + heading(key, level + 1) + objects_table_html(v, key) + "</div>";
  if (v.is_object()) return "<div class=\"sub\">" + render_json_object(v, key, level + 1) + "</div>";
  // An array holding records with records inside, or arrays of arrays: one collapsible part per
  // element (open when it is the only one), titled by its label.
  std::string h;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string title = element_title(key, v[i], i);
    h += std::string("<details class=\"element\"") + (v.size() == 1 ? " open" : "") + "><summary>" +
         html_escape(title) + "</summary><div class=\"sub\">" +
         (v[i].is_object() ? render_json_object(v[i], "", level + 1)
                           : render_table(key_value_table({{title, v[i]}}, ""))) +
         "</div></details>";
  }
  return h;
}

}  // namespace

bool is_record_array(const ordered_json& v) {
  if (!v.is_array() || v.empty()) return false;
  if (!std::all_of(v.begin(), v.end(), [](const ordered_json& e) { return e.is_object(); })) return false;
  for (const auto& rec : flatten_records(v))
    for (const auto& member : rec)
      if (member.is_array() &&
          std::any_of(member.begin(), member.end(), [](const ordered_json& e) { return e.is_object(); }))
        return false;
  return true;
}

ordered_json flatten_records(const ordered_json& records) {
  ordered_json out = ordered_json::array();
  for (const auto& rec : records) out.push_back(rec.is_object() ? flattened(rec) : rec);
  return out;
}

std::string render_json_object(const ordered_json& object, const std::string& title, int level,
                               const std::vector<std::string>& skip) {
  ordered_json scalars = ordered_json::object();
  std::string parts;
  for (const std::string& key : member_order(object)) {
    const ordered_json& v = object[key];
    if (std::find(skip.begin(), skip.end(), key) != skip.end()) continue;
    if (is_scalar_like(v))
      scalars[key] = v;
    else if (is_record_array(v))
      parts += record_table_html(v, key);
    else
      parts += structured_member_html(key, v, level);
  }
  std::string h = heading(title, level);
  if (!scalars.empty()) h += render_table(key_value_table(scalars, ""));
  return h + "<div class=\"parts\">" + parts + "</div>";
}

}  // namespace lminf
