// lminf report's generic rendering: escaping (property checks on random strings), base64 against
// coreutils' base64, CSV round trips, tables from random records, JSON objects to sections, the
// sweep table from sweep.json and from differing configs, and the errors naming the folder.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <regex>

#include <nlohmann/json.hpp>

#include "analysis/report/csv_table.h"
#include "analysis/report/html/html_table.h"
#include "analysis/report/html/html_text.h"
#include "analysis/report/html/json_view.h"
#include "analysis/report/html/report.h"
#include "analysis/report/html/sweep_folder.h"
#include "experiments/run/sweep.h"
#include "support/test_support.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using lminf::testing::error_of;
using lminf::testing::read_text;
using lminf::testing::TempDir;
using lminf::testing::write_text;
using nlohmann::ordered_json;

// Random text over an alphabet rich in markup characters, quotes, separators and UTF-8.
std::string random_text(std::mt19937_64& rng, size_t max_len) {
  static const std::vector<std::string> pieces = {"<", ">", "&",        "\"",     "'", ",", "\n",    "a",    "Z",
                                                  "0", " ", "\xc3\xa9", "script", "/", "=", "&amp;", "\r\n", "\t"};
  std::string s;
  const size_t n = rng() % (max_len + 1);
  for (size_t i = 0; i < n; ++i) s += pieces[rng() % pieces.size()];
  return s;
}

std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    bool matched = false;
    for (const auto& [ref, c] : std::vector<std::pair<std::string, char>>{
             {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&#39;", '\''}}) {
      if (s.compare(i, ref.size(), ref) == 0) {
        out += c;
        i += ref.size();
        matched = true;
        break;
      }
    }
    if (!matched) out += s[i++];
  }
  return out;
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

TEST(ReportHtml, EscapingLeavesNoMarkupAndRoundTrips) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    const std::string s = random_text(rng, 40);
    const std::string e = html_escape(s);
    EXPECT_EQ(e.find_first_of("<>\"'"), std::string::npos) << e;
    // every & starts one of the five references
    for (size_t p = e.find('&'); p != std::string::npos; p = e.find('&', p + 1))
      EXPECT_TRUE(std::regex_search(e.substr(p, 6), std::regex("^&(amp|lt|gt|quot|#39);"))) << e.substr(p);
    EXPECT_EQ(unescape(e), s);
  }
}

TEST(ReportHtml, Base64MatchesCoreutils) {
  TempDir d;
  std::mt19937_64 rng(11);
  for (size_t n : {0, 1, 2, 3, 4, 5, 31, 64, 97, 1000}) {
    std::string bytes(n, '\0');
    for (char& c : bytes) c = static_cast<char>(rng() & 0xff);
    std::ofstream(d / "b.bin", std::ios::binary) << bytes;
    std::string out;
    ASSERT_EQ(lminf::testing::run_command("base64 -w0 " + (d / "b.bin").string(), &out), 0) << out;
    EXPECT_EQ(base64_encode(bytes), out) << n;
  }
  EXPECT_EQ(data_uri("image/png", "ab").rfind("data:image/png;base64,", 0), 0u);
}

TEST(ReportHtml, CsvRoundTripsThroughParse) {
  std::mt19937_64 rng(3);
  for (int trial = 0; trial < 50; ++trial) {
    const size_t cols = 1 + rng() % 5, rows = rng() % 9;
    std::vector<std::string> header;
    for (size_t c = 0; c < cols; ++c) header.push_back("c" + std::to_string(c) + random_text(rng, 3));
    CsvTable t(header);
    for (size_t r = 0; r < rows; ++r) {
      std::vector<std::string> row;
      for (size_t c = 0; c < cols; ++c) row.push_back(csv_cell(random_text(rng, 6)));
      t.add(row);
    }
    const CsvTable back = parse_csv(t.text(), "t.csv");
    ASSERT_EQ(back.columns, header);
    ASSERT_EQ(back.rows.size(), rows);
    for (size_t r = 0; r < rows; ++r)
      for (size_t c = 0; c < cols; ++c) EXPECT_EQ(csv_cell(back.rows[r][c]), t.rows[r][c]);
  }
  EXPECT_NE(error_of([] { parse_csv("a,b\n1,2,3\n", "x.csv"); }).find("x.csv:2"), std::string::npos);
  EXPECT_NE(error_of([] { parse_csv("a\n\"open\n", "x.csv"); }).find("not closed"), std::string::npos);
}

ordered_json random_value(std::mt19937_64& rng) {
  switch (rng() % 6) {
    case 0:
      return static_cast<int64_t>(rng() % 2001) - 1000;
    case 1:
      return std::ldexp(static_cast<double>(rng() % 100000), -static_cast<int>(rng() % 20));
    case 2:
      return random_text(rng, 12);
    case 3:
      return rng() % 2 == 0;
    case 4:
      return nullptr;
    default:
      return ordered_json::array({1, "<b>", 2.5});
  }
}

TEST(ReportHtml, RecordsTableHasTheUnionOfKeysAndOneRowPerRecord) {
  std::mt19937_64 rng(5);
  const std::vector<std::string> pool = {"length", "depth", "<score>", "a&b", "n \"samples\"", "task"};
  for (size_t n : {0, 1, 7, 33}) {
    ordered_json records = ordered_json::array();
    std::vector<std::string> union_keys;  // the reference: first appearance, record by record
    for (size_t i = 0; i < n; ++i) {
      ordered_json r = ordered_json::object();
      for (const auto& k : pool)
        if (rng() % 3 != 0) {
          r[k] = random_value(rng);
          if (std::find(union_keys.begin(), union_keys.end(), k) == union_keys.end()) union_keys.push_back(k);
        }
      records.push_back(r);
    }
    const HtmlTable t = records_table(records, "cap");
    ASSERT_EQ(t.columns, union_keys);
    ASSERT_EQ(t.rows.size(), n);
    for (size_t i = 0; i < n; ++i)
      for (size_t c = 0; c < union_keys.size(); ++c) {
        const std::string cell = c < t.rows[i].size() ? t.rows[i][c] : "";
        const auto& rec = records[i];
        EXPECT_EQ(cell, rec.contains(union_keys[c]) ? json_cell_text(rec[union_keys[c]]) : "") << i << " " << c;
      }
    const std::string html = render_table(t);
    EXPECT_EQ(count_of(html, "<tr>"), n + 1);  // the header row and one per record
    EXPECT_NE(html.find("data-rows=\"" + std::to_string(n) + "\""), std::string::npos);
    EXPECT_EQ(html.find("<score>"), std::string::npos);
    EXPECT_EQ(html.find("<b>"), std::string::npos);
  }
}

TEST(ReportHtml, NumericColumnsAreMarkedForSorting) {
  HtmlTable t{"", {"name", "value", "mixed"}, {{"a", "1.5", "2"}, {"b", "nan", "x"}, {"c", "", "3"}}, {}};
  const std::string html = render_table(t);
  EXPECT_EQ(count_of(html, "data-type=\"num\""), 1u);  // only "value": "mixed" holds text
  EXPECT_EQ(count_of(html, "<td class=\"num\">"), 3u);
  for (const char* s : {"-1e-3", "42", "inf", "-inf", "nan", "3.25"}) EXPECT_TRUE(is_numeric_text(s)) << s;
  for (const char* s : {"", "1,5", "0x10", "12a", "v1"}) EXPECT_FALSE(is_numeric_text(s)) << s;
}

TEST(ReportHtml, JsonCellText) {
  EXPECT_EQ(json_cell_text(ordered_json(3)), "3");
  EXPECT_EQ(json_cell_text(ordered_json(int64_t{1} << 53)), std::to_string(int64_t{1} << 53));
  EXPECT_EQ(json_cell_text(ordered_json(0.125)), "0.125");
  EXPECT_EQ(json_cell_text(ordered_json(nullptr)), "");
  EXPECT_EQ(json_cell_text(ordered_json::array({1, 2})), "[1,2]");
  const std::string cut = json_cell_text(ordered_json(std::string(500, 'x')), 10);
  EXPECT_EQ(cut, std::string(10, 'x') + "...");
  // never cut inside a UTF-8 sequence
  std::string accents;
  for (int i = 0; i < 20; ++i) accents += "\xc3\xa9";
  const std::string c2 = json_cell_text(ordered_json(accents), 7);
  EXPECT_EQ(c2, accents.substr(0, 6) + "...");
}

// A results.json shaped like a task's: scalars, arrays of records (a nested object inside each),
// a nested object, and an array of structured objects.
ordered_json task_like_results(size_t n_a, size_t n_b) {
  ordered_json j = {{"task", "ruler"}, {"effective_length", 4096}, {"lengths", {1024, 2048}}};
  j["by_task"] = ordered_json::array();
  for (size_t i = 0; i < n_a; ++i)
    j["by_task"].push_back(
        {{"task", "niah_" + std::to_string(i)}, {"length", 1024 * (i + 1)}, {"score", 0.5}, {"num_samples", 3}});
  j["average"] = ordered_json::array();
  for (size_t i = 0; i < n_b; ++i) j["average"].push_back({{"length", i}, {"full", {{"bleu", 0.1}, {"rouge1", 0.2}}}});
  j["data"] = {{"documents", 3}, {"tokenizer", "x"}};
  j["runs"] = ordered_json::array({{{"label", "r0"}, {"windows", ordered_json::array({{{"lo", 1}, {"hi", 2}}})}}});
  return j;
}

TEST(ReportHtml, JsonObjectBecomesTablesAndSections) {
  for (auto [n_a, n_b] : {std::pair<size_t, size_t>{1, 2}, {13, 5}}) {
    const ordered_json j = task_like_results(n_a, n_b);
    EXPECT_TRUE(is_record_array(j["by_task"]));
    EXPECT_TRUE(is_record_array(j["average"]));
    EXPECT_FALSE(is_record_array(j["runs"]));  // records holding records: a section per element
    const std::string html = render_json_object(j, "Results", 2);
    // tables: scalars; by_task; average; data (sub-section); runs[0]'s scalars and its windows
    EXPECT_EQ(count_of(html, "<table"), 6u) << html;
    EXPECT_NE(html.find("data-rows=\"" + std::to_string(n_a) + "\""), std::string::npos);
    EXPECT_NE(html.find("data-rows=\"" + std::to_string(n_b) + "\""), std::string::npos);
    EXPECT_NE(html.find(">full.\u200bbleu</th>"), std::string::npos);  // nested objects flattened to dotted columns
    EXPECT_NE(html.find("<summary>runs: r0</summary>"), std::string::npos);  // the only element: open
    EXPECT_NE(html.find("<details class=\"element\" open>"), std::string::npos);
    EXPECT_NE(html.find(">data</h3>"), std::string::npos);
    EXPECT_EQ(render_json_object(j, "", 2, {"by_task", "average", "data", "runs"}).find("<h3>"), std::string::npos);
  }
}

// A sweep folder as `lminf run` leaves it: sweep.json (written by the sweep code itself), one folder
// per point with config.yaml and results.json (the last point not run).
std::vector<SweepPoint> write_fake_sweep(const fs::path& dir, bool manifest) {
  const auto points =
      expand_sweep(YAML::Load("grid: {attention.variant: [vanilla, lambda], task.max_length: [64, 96]}"), "x");
  if (manifest) write_sweep_manifest(dir, points);
  for (size_t i = 0; i + 1 < points.size(); ++i) {
    const fs::path p = dir / sweep_folder_name(points[i]);
    fs::create_directories(p);
    std::string yaml = "name: s\nattention:\n  variant: " + points[i].overrides[0].second +
                       "\ntask:\n  type: perplexity\n  max_length: " + points[i].overrides[1].second +
                       "\noutput:\n  dir: " + p.string() + "\n";
    write_text(p / "config.yaml", yaml);
    ordered_json r = {{"schema", "lminf.results"},
                      {"task", "perplexity"},
                      {"mean_nll", 2.0 + static_cast<double>(i)},
                      {"tokens", 100 * (i + 1)}};
    r["buckets"] = ordered_json::array();
    for (size_t b = 0; b <= i; ++b)
      r["buckets"].push_back({{"start", 32 * b}, {"end", 32 * (b + 1)}, {"mean_nll", 1.5}});
    r["provenance"] = {{"name", "s"}, {"git_revision", "abc"}, {"config", yaml}};
    write_text(p / "results.json", r.dump());
  }
  return points;
}

// The rows of the table whose caption starts with `caption`: each row's cells as text.
std::vector<std::vector<std::string>> table_rows(const std::string& html, const std::string& caption) {
  const size_t at = html.find("<caption>" + caption);
  if (at == std::string::npos) return {};
  const std::string table = html.substr(at, html.find("</table>", at) - at);
  const std::string body = table.substr(table.find("<tbody>"));
  std::vector<std::vector<std::string>> rows;
  const std::regex tr("<tr>(.*?)</tr>"), td("<td[^>]*>(?:<a [^>]*>)?(.*?)(?:</a>)?</td>");
  for (std::sregex_iterator r(body.begin(), body.end(), tr), end; r != end; ++r) {
    const std::string cells = (*r)[1].str();
    rows.emplace_back();
    for (std::sregex_iterator c(cells.begin(), cells.end(), td); c != end; ++c)
      rows.back().push_back(unescape((*c)[1].str()));
  }
  return rows;
}

TEST(ReportSweep, TableHasOneRowPerPointWithItsOverrides) {
  TempDir d;
  const auto points = write_fake_sweep(d.path(), true);
  const SweepFolder s = read_sweep_folder(d.path());
  ASSERT_TRUE(s.from_manifest);
  ASSERT_EQ(s.points.size(), points.size());
  EXPECT_EQ(s.keys, (std::vector<std::string>{"attention.variant", "task.max_length"}));
  const std::string html = report_html({d.path(), false});
  const auto rows = table_rows(html, "one row per point");
  ASSERT_EQ(rows.size(), points.size());
  for (size_t i = 0; i < points.size(); ++i) {
    ASSERT_GE(rows[i].size(), 4u);
    EXPECT_EQ(rows[i][0], "#" + std::to_string(i + 1));
    EXPECT_EQ(rows[i][1], points[i].overrides[0].second);
    EXPECT_EQ(rows[i][2], points[i].overrides[1].second);
    EXPECT_EQ(rows[i][3], i + 1 < points.size() ? "done" : "not run");
  }
  // buckets of every point in one table: point i has i + 1 buckets
  size_t buckets = 0;
  for (size_t i = 0; i + 1 < points.size(); ++i) buckets += i + 1;
  EXPECT_EQ(table_rows(html, "buckets:").size(), buckets);
}

TEST(ReportSweep, WithoutManifestTheSweptKeysAreThoseThatDiffer) {
  TempDir d;
  const auto points = write_fake_sweep(d.path(), false);
  const SweepFolder s = read_sweep_folder(d.path());
  EXPECT_FALSE(s.from_manifest);
  EXPECT_EQ(s.keys, (std::vector<std::string>{"attention.variant", "task.max_length"}));  // output.dir aside
  ASSERT_EQ(s.points.size(), points.size() - 1);  // the point not run has no folder
  for (const ReportPoint& p : s.points) {
    ASSERT_EQ(p.overrides.size(), 2u);
    EXPECT_EQ(p.folder, "variant-" + p.overrides[0].second + "_max_length-" + p.overrides[1].second);
  }
  EXPECT_NE(report_html({d.path(), false}).find("has no sweep.json"), std::string::npos);
}

TEST(ReportErrors, NameTheFolderAndWhatIsMissing) {
  TempDir d;
  const std::string missing = error_of([&] { write_report({d / "nope", false}); });
  EXPECT_NE(missing.find((d / "nope").string()), std::string::npos) << missing;
  EXPECT_NE(missing.find("does not exist"), std::string::npos) << missing;
  const std::string empty = error_of([&] { write_report({d.path(), false}); });
  for (const char* s : {"config.yaml", "results.json", "sweep.json", "neither"})
    EXPECT_NE(empty.find(s), std::string::npos) << empty;
  write_text(d / "sweep.json", R"({"schema": "lminf.sweep", "points": [{"folder": "../etc"}]})");
  EXPECT_NE(error_of([&] { write_report({d.path(), false}); }).find("not a sub-folder name"), std::string::npos);
}

TEST(ReportRun, HostileFilesCannotInjectMarkup) {
  TempDir d;
  const std::string evil = "</pre></td><script>window.pwned=1</script><img src=x onerror=alert(1)>\"'&";
  write_text(d / "config.yaml",
             "name: \"" + std::string("</title><script>alert(2)</script>") + "\"\nnote: '" + evil + "'\n");
  ordered_json r = {{"task", evil}, {evil, evil}, {"records", ordered_json::array({{{evil, evil}}, {{"x", 1}}})}};
  r["provenance"] = {{"name", evil}};
  write_text(d / "results.json", r.dump());
  write_text(d / "samples.jsonl", ordered_json({{"generated", evil}}).dump() + "\n");
  write_text(d / "t.csv", "a,b\n\"" + std::string("<script>x</script>") + "\",2\n");
  write_text(d / ("x\"><img src=y onerror=alert(3)>.svg"),
             "<svg xmlns='http://www.w3.org/2000/svg' width='4' height='4'>"
             "<script>alert(4)</script></svg>");
  const fs::path page = write_report({d.path(), false});
  const std::string html = read_text(page);
  EXPECT_EQ(count_of(html, "<script"), 1u);  // the page's own
  EXPECT_EQ(count_of(html, "<img"), 1u);     // the one figure, embedded as a data URI
  EXPECT_EQ(html.find("<img src=x"), std::string::npos);
  EXPECT_NE(html.find("&lt;img src=x onerror=alert(1)&gt;"), std::string::npos);  // shown as text
  EXPECT_EQ(html.find("</pre></td>"), std::string::npos);
  EXPECT_EQ(html.find("alert(4)"), std::string::npos);  // the SVG is base64 inside the data URI
  for (const auto& name : lminf::testing::dir_entries(d.path()))
    EXPECT_EQ(name.find(".tmp"), std::string::npos) << name;
}

}  // namespace
}  // namespace lminf
