#include "analysis/report/html/report_folder.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "analysis/report/run_file.h"
#include "framework/core/error.h"
#include "framework/io/h5_file.h"

namespace lminf {
namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

constexpr uintmax_t kMaxSvgBytes = uintmax_t{256}
                                   << 10;  // a larger SVG (many points) is shown as its PNG, when there is one

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) fail("cannot read ", p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// `p` parsed as JSON; a problem (naming the file) instead when it is unreadable.
std::optional<ordered_json> read_json(const fs::path& p, std::vector<std::string>& problems) {
  try {
    return ordered_json::parse(read_bytes(p));
  } catch (const std::exception& e) {
    problems.push_back(p.string() + ": not readable as JSON (" + e.what() + ")");
    return std::nullopt;
  }
}

bool skipped_name(const std::string& name) {
  return name.empty() || name[0] == '.' || name.find(".tmp") != std::string::npos || name == "report.html";
}

H5File read_h5(const fs::path& p, const std::string& name) {
  H5File f;
  f.name = name;
  try {
    H5Reader h5(p);
    if (h5.has_attr("/", "schema")) f.schema = h5.attr_string("/", "schema");
    if (h5.has_attr("/", "schema_version")) f.schema_version = h5.attr_int("/", "schema_version");
    for (const std::string& child : h5.list("/")) {
      try {
        f.objects.push_back(child + "/ (" + std::to_string(h5.list(child).size()) + " members)");
      } catch (const Error&) {  // a dataset
        std::string shape;
        for (int64_t d : h5.shape(child)) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
        f.objects.push_back(child + " [" + shape + "]");
      }
    }
    open_run_file(p, "");  // throws unless `lminf analyze` reads it
    f.analyze_input = true;
  } catch (const std::exception& e) {
    if (f.problem.empty()) f.problem = e.what();
  }
  return f;
}

RecordsFile read_records(const fs::path& p, const std::string& name, std::vector<std::string>& problems) {
  RecordsFile r;
  r.name = name;
  r.preview = ordered_json::array();
  std::ifstream in(p);
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    ++r.count;
    if (r.preview.size() >= kRecordsPreview) continue;
    try {
      r.preview.push_back(ordered_json::parse(line));
    } catch (const std::exception& e) {
      problems.push_back(p.string() + ":" + std::to_string(n) + ": not a JSON record (" + e.what() + ")");
    }
  }
  return r;
}

CsvFile read_csv_file(const fs::path& p, const std::string& name, std::vector<std::string>& problems) {
  CsvFile c;
  c.name = name;
  try {
    CsvTable t = parse_csv(read_bytes(p), p.string());
    c.rows = t.rows.size();
    if (c.rows <= kMaxCsvRows) c.table = std::move(t);
  } catch (const std::exception& e) {
    problems.push_back(e.what());
  }
  return c;
}

// One figure per stem: the SVG (scales sharply) unless it is over kMaxSvgBytes and a PNG exists.
std::vector<Figure> pick_figures(const std::map<std::string, std::map<std::string, fs::path>>& by_stem) {
  std::vector<Figure> out;
  for (const auto& [stem, formats] : by_stem) {
    const auto svg = formats.find("svg"), png = formats.find("png");
    const bool use_png = png != formats.end() && (svg == formats.end() || fs::file_size(svg->second) > kMaxSvgBytes);
    Figure f{use_png ? png->second : svg->second, {}};
    for (const auto& [ext, path] : formats)
      if (path != f.path) f.also.push_back(ext);
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace

FolderContents read_folder_contents(const fs::path& dir, const std::string& prefix) {
  FolderContents c;
  c.dir = dir;
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && !skipped_name(e.path().filename().string())) entries.push_back(e.path());
  std::sort(entries.begin(), entries.end());
  std::map<std::string, std::map<std::string, fs::path>> images;  // stem -> extension -> file
  for (const fs::path& p : entries) {
    const std::string name = prefix + p.filename().string(), ext = p.extension().string();
    c.files.push_back({name, fs::file_size(p)});
    if (ext == ".png" || ext == ".svg")
      images[p.stem().string()][ext.substr(1)] = p;
    else if (ext == ".csv")
      c.csvs.push_back(read_csv_file(p, name, c.problems));
    else if (ext == ".h5")
      c.h5.push_back(read_h5(p, name));
    else if (ext == ".jsonl")
      c.records.push_back(read_records(p, name, c.problems));
  }
  c.figures = pick_figures(images);
  return c;
}

AnalysisFolder read_analysis_folder(const fs::path& dir, const std::string& prefix) {
  AnalysisFolder a;
  a.dir = dir / "analysis";
  if (!fs::is_directory(a.dir)) return a;
  a.contents = read_folder_contents(a.dir, prefix + "analysis/");
  if (fs::exists(a.dir / "summary.json")) a.summary = read_json(a.dir / "summary.json", a.contents.problems);
  return a;
}

bool is_run_folder(const fs::path& dir) {
  return fs::is_regular_file(dir / "config.yaml") || fs::is_regular_file(dir / "results.json");
}

RunFolder read_run_folder(const fs::path& dir) {
  if (!fs::is_directory(dir))
    fail("lminf report: ", dir.string(), " is not a folder (give a run's or a sweep's output.dir)");
  if (!is_run_folder(dir))
    fail("lminf report: ", dir.string(), " is not a run folder: it has no config.yaml and no results.json");
  RunFolder r;
  r.dir = dir;
  r.contents = read_folder_contents(dir, "");
  if (fs::exists(dir / "config.yaml")) r.config_text = read_bytes(dir / "config.yaml");
  if (fs::exists(dir / "results.json"))
    r.results = read_json(dir / "results.json", r.contents.problems);
  else
    r.contents.problems.push_back((dir / "results.json").string() + " is missing: the run has not finished, or failed");
  r.analysis = read_analysis_folder(dir, "");
  return r;
}

}  // namespace lminf
