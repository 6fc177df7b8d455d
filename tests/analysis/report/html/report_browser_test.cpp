// lminf report in a real browser: headless Chromium (Debian's `chromium`) opens the report pages of a
// sweep (a tiny random Llama, perplexity with factor dumps: the sweep's overlay analysis draws every
// kind of figure) and of a passkey run on the embedded model (a heat map and tables of records), with a
// checking script appended: every image must decode (naturalWidth > 0), every table must hold the rows
// of its data, sorting must order a column, nothing from the files may add markup. A screenshot of
// each page is saved in the build folder (report_screenshots/). Skips when chromium is absent.
#include <gtest/gtest.h>

#include <unistd.h>

#include <regex>
#include <set>

#include <nlohmann/json.hpp>

#include "analysis/report/gnuplot.h"
#include "analysis/report/html/report.h"
#include "experiments/run/run_experiment.h"
#include "models/random_checkpoint.h"
#include "parallel/communicator.h"
#include "support/test_support.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using lminf::testing::read_text;
using lminf::testing::run_command;
using lminf::testing::TempDir;
using lminf::testing::write_text;
using nlohmann::json;

// Appended to a copy of the page: on load, what the browser made of it, as JSON in a hidden
// <pre id=lminf-check>. It sorts the first table with a numeric column of at least 3 rows by that
// column both ways, then puts the rows back, so the screenshot shows the page as it opens.
constexpr const char* kCheckScript = R"JS(<script>
window.addEventListener('load', function () {
  var out = { images: [], tables: [], scripts: document.scripts.length, pwned: !!window.pwned, sort: null };
  document.querySelectorAll('img').forEach(function (img) {
    out.images.push({ alt: img.alt, width: img.naturalWidth, complete: img.complete });
  });
  document.querySelectorAll('table.data').forEach(function (t) {
    out.tables.push({ caption: t.caption ? t.caption.textContent : '', declared: +t.getAttribute('data-rows'),
                      rows: t.tBodies.length ? t.tBodies[0].rows.length : -1 });
  });
  var ordered = function (v, s) {
    for (var k = 1; k < v.length; k++) if (s * (v[k] - v[k - 1]) < 0) return false;
    return true;
  };
  var tables = document.querySelectorAll('table.sortable');
  for (var i = 0; i < tables.length && !out.sort; i++) {
    var body = tables[i].tBodies[0], heads = tables[i].tHead.rows[0].cells;
    for (var c = 0; c < heads.length && body.rows.length >= 3; c++) {
      if (heads[c].getAttribute('data-type') !== 'num') continue;
      var column = function () {
        return Array.prototype.map.call(body.rows, function (r) { return parseFloat(r.cells[c].textContent); })
          .filter(function (v) { return !isNaN(v); });
      };
      var original = Array.prototype.slice.call(body.rows);
      heads[c].click();
      var up = column();
      heads[c].click();
      var down = column();
      out.sort = { column: heads[c].textContent, values: up.length,
                   ascending: ordered(up, 1), descending: ordered(down, -1) };
      original.forEach(function (r) { body.appendChild(r); });
      heads[c].removeAttribute('data-dir');
      break;
    }
  }
  var pre = document.createElement('pre');
  pre.id = 'lminf-check';
  pre.hidden = true;
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>)JS";

std::string chromium_path() {
  std::string out;
  if (run_command("command -v chromium", &out) != 0) return "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// Headless Chromium on `page` with `args`, a fresh profile in `work`, at most 60 s; returns its stdout.
std::string run_chromium(const std::string& chromium, const fs::path& page, const std::string& args,
                         const fs::path& work) {
  const fs::path profile = work / ("chromium-profile-" + page.stem().string());
  const std::string cmd = "timeout 60 " + chromium +
                          " --headless --disable-gpu --no-first-run --no-default-browser-check --disable-extensions"
                          " --disable-background-networking --hide-scrollbars --mute-audio --user-data-dir=" +
                          profile.string() + (::geteuid() == 0 ? " --no-sandbox" : "") + " " + args + " file://" +
                          fs::absolute(page).string();
  std::string out;
  const int rc = run_command("{ " + cmd + " 2>" + (work / "chromium.log").string() + "; }", &out);
  EXPECT_EQ(rc, 0) << cmd << "\n" << read_text(work / "chromium.log");
  return out;
}

std::string unescape_text(std::string s) {
  for (const auto& [ref, c] :
       std::vector<std::pair<std::string, std::string>>{{"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}})
    for (size_t p = s.find(ref); p != std::string::npos; p = s.find(ref, p + 1)) s.replace(p, ref.size(), c);
  return s;
}

// The page opened with the checking script: what the browser found. The same Chromium run saves a
// screenshot of the page's top as report_screenshots/<name>.png in the build folder.
json browser_check(const std::string& chromium, const fs::path& page, const std::string& name, const fs::path& work) {
  std::string html = read_text(page);
  const size_t end = html.rfind("</body>");
  EXPECT_NE(end, std::string::npos);
  html.insert(end, kCheckScript);
  const fs::path copy = work / (name + "-checked.html");
  write_text(copy, html);
  const fs::path shot = fs::absolute("report_screenshots") / (name + ".png");
  fs::create_directories(shot.parent_path());
  fs::remove(shot);
  const std::string dom =
      run_chromium(chromium, copy, "--dump-dom --screenshot=" + shot.string() + " --window-size=1280,2000", work);
  EXPECT_TRUE(fs::exists(shot)) << shot;
  if (fs::exists(shot)) {
    EXPECT_GT(fs::file_size(shot), 10000u) << shot;
    std::cout << "screenshot: " << shot.string() << "\n";
  }
  const std::regex check("<pre id=\"lminf-check\"[^>]*>([^<]*)</pre>");
  std::smatch m;
  if (!std::regex_search(dom, m, check)) {
    ADD_FAILURE() << "no check output in the dumped DOM:\n" << dom.substr(0, 2000);
    return json();
  }
  return json::parse(unescape_text(m[1].str()));
}

// Figures the page must show: one per (folder, stem) of the PNG/SVG files under `dir` (two levels).
size_t expected_figures(const fs::path& dir) {
  std::set<std::string> stems;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
    if (it.depth() > 2 || !it->is_regular_file()) continue;
    const std::string ext = it->path().extension().string(), name = it->path().filename().string();
    if ((ext == ".png" || ext == ".svg") && name.find(".tmp") == std::string::npos)
      stems.insert((it->path().parent_path() / it->path().stem()).string());
  }
  return stems.size();
}

const json* table_titled(const json& check, const std::string& caption_start) {
  for (const auto& t : check["tables"])
    if (t["caption"].get<std::string>().rfind(caption_start, 0) == 0) return &t;
  return nullptr;
}

// What every page must pass: images decoded, tables complete, sorting works, no injected markup.
void expect_page_sound(const json& check, size_t figures) {
  ASSERT_TRUE(check.is_object());
  EXPECT_EQ(check["images"].size(), figures);
  for (const auto& img : check["images"]) EXPECT_GT(img["width"].get<int>(), 0) << img.dump();
  EXPECT_GT(check["tables"].size(), 3u);
  for (const auto& t : check["tables"]) EXPECT_EQ(t["rows"], t["declared"]) << t.dump();
  EXPECT_EQ(check["scripts"], 2) << "the page's script and the checking script only";
  EXPECT_FALSE(check["pwned"].get<bool>());
  ASSERT_TRUE(check["sort"].is_object()) << "no numeric column of 3 rows to sort";
  EXPECT_TRUE(check["sort"]["ascending"].get<bool>()) << check["sort"].dump();
  EXPECT_TRUE(check["sort"]["descending"].get<bool>()) << check["sort"].dump();
}

class ReportBrowser : public ::testing::Test {
 protected:
  void SetUp() override {
    chromium_ = chromium_path();
    if (chromium_.empty()) GTEST_SKIP() << "chromium is not installed (apt-get install chromium; scripts/setup.sh)";
    if (find_gnuplot().empty()) GTEST_SKIP() << "gnuplot is not installed: the pages would have no figures to check";
  }
  std::string chromium_;
  TempDir d_;
};

TEST_F(ReportBrowser, SweepPageShowsEveryFigureAndTable) {
  write_random_llama(d_ / "model", llama_preset("tiny"), 2);
  write_text(d_ / "data.ids", "5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23\n20 21 22 23 24 25 26 27 28 29\n");
  write_text(
      d_ / "sweep.yaml",
      "name: browser-sweep\nmodel: {path: " + (d_ / "model").string() +
          "}\ndata: {path: " + (d_ / "data.ids").string() +
          "}\ntask: {type: perplexity, bucket: 4}\n"
          "dump: {factors: [logits, entropy, features], distance_bucket: 4, feature_first: 2, feature_stride: 3}\n"
          "output: {dir: " +
          (d_ / "out").string() +
          "}\n"
          "sweep: {points: [{attention.variant: vanilla}, {attention.variant: lambda, attention.local_branch: 5, "
          "attention.global_branch: 1}]}\n");
  LocalCommunicator world;
  run_file((d_ / "sweep.yaml").string(), {}, world, false);
  const fs::path page = write_report({d_ / "out", true});
  const json check = browser_check(chromium_, page, "sweep", d_.path());
  expect_page_sound(check, expected_figures(d_ / "out"));
  const json* sweep = table_titled(check, "one row per point");
  ASSERT_NE(sweep, nullptr);
  EXPECT_EQ((*sweep)["rows"], 2);
  size_t buckets = 0;
  for (const auto& e : fs::directory_iterator(d_ / "out"))
    if (fs::exists(e.path() / "results.json"))
      buckets += json::parse(read_text(e.path() / "results.json"))["buckets"].size();
  const json* across = table_titled(check, "buckets:");
  ASSERT_NE(across, nullptr);
  EXPECT_EQ((*across)["rows"].get<size_t>(), buckets);
}

TEST_F(ReportBrowser, RunPageOfAPasskeyRun) {
  const fs::path model = lminf::testing::source_dir() / "embedded" / "lminf-info-1m";
  write_text(d_ / "p.yaml", "name: browser-passkey\nseed: 1\nmodel: {path: " + model.string() +
                                "}\n"
                                "task: {type: passkey, lengths: [128, 192, 256], depths: [0, 0.5, 1], samples: 1}\n"
                                "output: {dir: " +
                                (d_ / "run").string() + "}\n");
  LocalCommunicator world;
  run_file((d_ / "p.yaml").string(), {}, world, false);
  // A member a later task might add, with markup that must stay text.
  json results = json::parse(read_text(d_ / "run" / "results.json"));
  results["note"] = "<img src=x onerror=\"window.pwned=1\"><script>window.pwned=1</script>";
  write_text(d_ / "run" / "results.json", results.dump(2));
  const fs::path page = write_report({d_ / "run", true});
  const json check = browser_check(chromium_, page, "passkey", d_.path());
  expect_page_sound(check, expected_figures(d_ / "run"));
  const json* cells = table_titled(check, "cells");
  ASSERT_NE(cells, nullptr);
  EXPECT_EQ((*cells)["rows"].get<size_t>(), results["cells"].size());
  const json* by_length = table_titled(check, "by_length");
  ASSERT_NE(by_length, nullptr);
  EXPECT_EQ((*by_length)["rows"].get<size_t>(), results["by_length"].size());
}

}  // namespace
}  // namespace lminf
