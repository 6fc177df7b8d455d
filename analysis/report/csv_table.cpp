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

namespace {

// The cells of the CSV line starting at text[pos]; pos is left after its line end.
std::vector<std::string> csv_line(const std::string& text, size_t& pos, const std::string& where, size_t line) {
  std::vector<std::string> cells(1);
  bool quoted = false;
  for (; pos < text.size(); ++pos) {
    const char c = text[pos];
    if (quoted) {
      if (c != '"') cells.back() += c;
      else if (pos + 1 < text.size() && text[pos + 1] == '"') cells.back() += text[++pos];
      else quoted = false;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      cells.emplace_back();
    } else if (c == '\n' || c == '\r') {
      pos += (c == '\r' && pos + 1 < text.size() && text[pos + 1] == '\n') ? 2 : 1;
      return cells;
    } else {
      cells.back() += c;
    }
  }
  if (quoted) fail(where, ":", line, ": a quoted cell is not closed");
  return cells;
}

}  // namespace

CsvTable parse_csv(const std::string& text, const std::string& where) {
  size_t pos = 0, line = 1;
  if (text.empty()) fail(where, ": empty (no header line)");
  CsvTable t(csv_line(text, pos, where, line));
  while (pos < text.size()) {
    ++line;
    std::vector<std::string> cells = csv_line(text, pos, where, line);
    if (cells.size() == 1 && cells[0].empty() && t.columns.size() > 1) continue;  // a blank line
    if (cells.size() > t.columns.size())
      fail(where, ":", line, ": ", cells.size(), " cells for ", t.columns.size(), " columns");
    cells.resize(t.columns.size());
    t.rows.push_back(std::move(cells));
  }
  return t;
}

}  // namespace lminf
