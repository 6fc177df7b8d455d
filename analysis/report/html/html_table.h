// A sortable HTML table: plain text cells (escaped when rendered), numeric columns detected and
// marked for the page's sorting script (report_assets.h) and right-aligned.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lminf {

struct HtmlTable {
  std::string caption;                         // "" for none
  std::vector<std::string> columns;            // header texts
  std::vector<std::vector<std::string>> rows;  // one text per column (missing cells are "")
  std::vector<std::string> row_links;          // optional: per row, an in-page anchor (id) for its first cell
};

// <table class="data sortable" data-rows="N">: a <th data-type="num"> for columns whose non-empty
// cells are all numbers, every text escaped, rows without enough cells padded with empty ones.
std::string render_table(const HtmlTable& t);

// A two-column (key, value) table of an object's scalar members and arrays of scalars, in order.
HtmlTable key_value_table(const nlohmann::ordered_json& object, const std::string& caption);

// A table of an array of JSON objects (records): columns are the union of their keys in order of
// first appearance, one row per element; a value that is an array or object is shown as compact JSON.
// Elements that are not objects become one row with the element in a column "value".
HtmlTable records_table(const nlohmann::ordered_json& records, const std::string& caption);

}  // namespace lminf
