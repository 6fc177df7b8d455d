// The layering of the source tree: every `#include "..."` of lminf's own headers in the library
// folders is checked against the dependency table of docs/architecture.md, so the table stays true.
//
// A folder is a unit (one library each: framework/core, attention/variants, attention, ...). A file
// of unit U may include headers of
//   - U itself,
//   - an ancestor folder of U (a folder's root holds its seam headers: attention/attention_variant.h
//     serves attention/variants),
//   - the units the table lists for U ("may include"; not transitive: each edge is written down).
// Every unit that holds sources must have a row, and every row must name a folder that exists.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {
namespace fs = std::filesystem;

const fs::path kSource = LMINF_SOURCE_DIR;
// The folders whose files are libraries (bench/, fuzz/ and tests/ may include anything).
const std::vector<std::string> kRoots = {"framework", "parallel", "attention", "models",
                                         "metrics",   "analysis", "experiments"};

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string unit_of(const std::string& relative_path) {
  return fs::path(relative_path).parent_path().generic_string();
}

// unit -> the units it may include, from the rows of the table under "## Dependency table".
std::map<std::string, std::set<std::string>> dependency_table(std::string* error) {
  std::map<std::string, std::set<std::string>> table;
  const std::string doc = read_file(kSource / "docs" / "architecture.md");
  const size_t start = doc.find("\n## Dependency table");
  if (start == std::string::npos) {
    *error = "docs/architecture.md has no section '## Dependency table'";
    return table;
  }
  const size_t end = doc.find("\n## ", start + 1);
  std::istringstream lines(doc.substr(start, end == std::string::npos ? std::string::npos : end - start));
  const std::regex row(R"(^\|\s*`([a-z_/]+?)/?`\s*\|(.*)\|\s*$)");
  const std::regex name("`([a-z_/]+?)/?`");
  std::string line;
  while (std::getline(lines, line)) {
    std::smatch m;
    if (!std::regex_match(line, m, row)) continue;
    const std::string cells = m[2].str();
    const std::string last = cells.substr(cells.rfind('|') == std::string::npos ? 0 : cells.rfind('|') + 1);
    std::set<std::string>& deps = table[m[1].str()];
    for (std::sregex_iterator it(last.begin(), last.end(), name), stop; it != stop; ++it) deps.insert((*it)[1].str());
  }
  return table;
}

bool is_ancestor(const std::string& a, const std::string& u) {
  return u.size() > a.size() && u.compare(0, a.size(), a) == 0 && u[a.size()] == '/';
}

TEST(Layering, EveryIncludeFollowsTheDependencyTable) {
  std::string error;
  const auto table = dependency_table(&error);
  ASSERT_TRUE(error.empty()) << error;
  ASSERT_FALSE(table.empty()) << "no rows in the dependency table of docs/architecture.md";

  std::set<std::string> units_with_sources;
  std::vector<std::string> problems;
  const std::regex include("#include \"([a-z_0-9/]+\\.h)\"");
  int64_t checked = 0;
  for (const auto& root : kRoots) {
    for (const auto& entry : fs::recursive_directory_iterator(kSource / root)) {
      const std::string ext = entry.path().extension().string();
      if (!entry.is_regular_file() || (ext != ".h" && ext != ".cpp")) continue;
      const std::string rel = fs::relative(entry.path(), kSource).generic_string();
      const std::string unit = unit_of(rel);
      units_with_sources.insert(unit);
      const auto row = table.find(unit);
      const std::string text = read_file(entry.path());
      for (std::sregex_iterator it(text.begin(), text.end(), include), stop; it != stop; ++it) {
        const std::string header = (*it)[1].str();
        if (!fs::exists(kSource / header)) continue;  // a system or generated header spelled with quotes
        const std::string target = unit_of(header);
        ++checked;
        if (target == unit || is_ancestor(target, unit)) continue;
        if (row != table.end() && row->second.count(target)) continue;
        problems.push_back(rel + " includes " + header + ": " + unit + " may not include " + target +
                           " (docs/architecture.md, dependency table)");
      }
    }
  }
  for (const auto& unit : units_with_sources)
    if (!table.count(unit)) problems.push_back("folder " + unit + "/ has no row in the dependency table");
  for (const auto& [unit, deps] : table) {
    if (!fs::is_directory(kSource / unit)) problems.push_back("the dependency table names " + unit + "/, which does not exist");
    for (const auto& d : deps)
      if (!fs::is_directory(kSource / d)) problems.push_back("the row of " + unit + "/ names " + d + "/, which does not exist");
  }
  EXPECT_GT(checked, 100) << "too few includes found: is LMINF_SOURCE_DIR right?";
  std::string all;
  for (const auto& p : problems) all += "\n  " + p;
  EXPECT_TRUE(problems.empty()) << problems.size() << " layering problems:" << all;
}

// Rows that allow more than the code uses are stale too: every listed edge is used by some include.
TEST(Layering, EveryTableEdgeIsUsed) {
  std::string error;
  const auto table = dependency_table(&error);
  ASSERT_TRUE(error.empty()) << error;
  std::map<std::string, std::set<std::string>> used;
  const std::regex include("#include \"([a-z_0-9/]+\\.h)\"");
  for (const auto& root : kRoots) {
    for (const auto& entry : fs::recursive_directory_iterator(kSource / root)) {
      const std::string ext = entry.path().extension().string();
      if (!entry.is_regular_file() || (ext != ".h" && ext != ".cpp")) continue;
      const std::string unit = unit_of(fs::relative(entry.path(), kSource).generic_string());
      const std::string text = read_file(entry.path());
      for (std::sregex_iterator it(text.begin(), text.end(), include), stop; it != stop; ++it)
        used[unit].insert(unit_of((*it)[1].str()));
    }
  }
  std::vector<std::string> stale;
  for (const auto& [unit, deps] : table)
    for (const auto& d : deps)
      if (!used[unit].count(d)) stale.push_back(unit + " -> " + d);
  std::string all;
  for (const auto& s : stale) all += "\n  " + s;
  EXPECT_TRUE(stale.empty()) << "edges of the dependency table no include uses (remove them):" << all;
}

}  // namespace
