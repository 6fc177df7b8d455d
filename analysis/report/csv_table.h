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

// The table in CSV `text` (what CsvTable::text() writes, or any RFC 4180 file): the first line is
// the header; quoted cells may hold commas, doubled quotes and line breaks; \r\n line ends accepted;
// short rows are padded with empty cells; blank lines are skipped (in a one-column table they are
// rows with an empty cell). Throws naming `where` when a row has more cells than the
// header or a quote is not closed.
CsvTable parse_csv(const std::string& text, const std::string& where);

}  // namespace lminf
