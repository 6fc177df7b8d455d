// A small CSV table (RFC 4180 quoting) for the tables `lminf analyze` writes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lminf {

struct CsvTable {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;

  explicit CsvTable(std::vector<std::string> cols) : columns(std::move(cols)) {}
  void add(std::vector<std::string> cells);  // throws unless one cell per column
  std::string text() const;                  // header line, then one line per row
};

// Numbers as text: integers exactly; reals with 9 significant digits; "nan", "inf", "-inf".
std::string csv_cell(double v);
std::string csv_cell(int64_t v);
inline std::string csv_cell(int v) { return csv_cell(static_cast<int64_t>(v)); }
// Text, quoted when it holds a comma, a quote or a line break.
std::string csv_cell(const std::string& s);

}  // namespace lminf
