#include "analysis/report/html/html_table.h"

#include <algorithm>

#include "analysis/report/html/html_text.h"

namespace lminf {

namespace {

bool numeric_column(const HtmlTable& t, size_t c) {
  bool any = false;
  for (const auto& row : t.rows) {
    if (c >= row.size() || row[c].empty()) continue;
    if (!is_numeric_text(row[c])) return false;
    any = true;
  }
  return any;
}

// A header's text with a zero-width space after each '.', so "attention.local_branch" may wrap there.
std::string header_text(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '.' ? std::string(".\u200b") : std::string(1, c);
  return out;
}

}  // namespace

std::string render_table(const HtmlTable& t) {
  std::vector<bool> numeric(t.columns.size());
  for (size_t c = 0; c < t.columns.size(); ++c) numeric[c] = numeric_column(t, c);
  std::string h =
      "<div class=\"table-wrap\"><table class=\"data sortable\" data-rows=\"" + std::to_string(t.rows.size()) + "\">";
  if (!t.caption.empty()) h += "<caption>" + html_escape(t.caption) + "</caption>";
  h += "<thead><tr>";
  for (size_t c = 0; c < t.columns.size(); ++c)
    h += std::string("<th") + (numeric[c] ? " data-type=\"num\"" : "") + " title=\"sort by " +
         html_escape(t.columns[c]) + "\">" + header_text(html_escape(t.columns[c])) + "</th>";
  h += "</tr></thead><tbody>";
  for (size_t r = 0; r < t.rows.size(); ++r) {
    h += "<tr>";
    for (size_t c = 0; c < t.columns.size(); ++c) {
      const std::string text = c < t.rows[r].size() ? html_escape(t.rows[r][c]) : "";
      const bool link = c == 0 && r < t.row_links.size() && !t.row_links[r].empty();
      h += numeric[c] ? "<td class=\"num\">" : "<td>";
      h += link ? "<a href=\"#" + html_escape(t.row_links[r]) + "\">" + text + "</a>" : text;
      h += "</td>";
    }
    h += "</tr>";
  }
  return h + "</tbody></table></div>";
}

HtmlTable key_value_table(const nlohmann::ordered_json& object, const std::string& caption) {
  HtmlTable t{caption, {"key", "value"}, {}, {}};
  for (const std::string& k : member_order(object)) t.rows.push_back({k, json_cell_text(object[k])});
  return t;
}

HtmlTable records_table(const nlohmann::ordered_json& records, const std::string& caption) {
  HtmlTable t{caption, {}, {}, {}};
  auto column = [&](const std::string& name) {
    const auto it = std::find(t.columns.begin(), t.columns.end(), name);
    if (it != t.columns.end()) return static_cast<size_t>(it - t.columns.begin());
    t.columns.push_back(name);
    return t.columns.size() - 1;
  };
  for (const auto& rec : records) {
    std::vector<std::string> row(t.columns.size());
    if (!rec.is_object()) {
      const size_t c = column("value");
      row.resize(t.columns.size());
      row[c] = json_cell_text(rec);
    }
    for (auto it = rec.begin(); rec.is_object() && it != rec.end(); ++it) {
      const size_t c = column(it.key());
      row.resize(t.columns.size());
      row[c] = json_cell_text(it.value());
    }
    t.rows.push_back(std::move(row));
  }
  return t;
}

}  // namespace lminf
