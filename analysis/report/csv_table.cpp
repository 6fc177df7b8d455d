#include "analysis/report/csv_table.h"

#include <cmath>
#include <cstdio>

#include "framework/core/error.h"

namespace lminf {

void CsvTable::add(std::vector<std::string> cells) {
  if (cells.size() != columns.size()) fail("CsvTable: a row of ", cells.size(), " cells for ", columns.size(), " columns");
  rows.push_back(std::move(cells));
}

std::string CsvTable::text() const {
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) out += (i ? "," : "") + cells[i];
    out += "\n";
  };
  std::vector<std::string> header;
  for (const auto& c : columns) header.push_back(csv_cell(c));
  line(header);
  for (const auto& r : rows) line(r);
  return out;
}

std::string csv_cell(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string csv_cell(int64_t v) { return std::to_string(v); }

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace lminf
