#include "analysis/report/html/sweep_folder.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "framework/core/error.h"

namespace lminf {
namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

constexpr const char* kManifest = "sweep.json";

void flatten_node(const YAML::Node& n, const std::string& prefix,
                  std::vector<std::pair<std::string, std::string>>& out) {
  if (n.IsMap() && n.size() > 0) {
    for (auto it = n.begin(); it != n.end(); ++it)
      flatten_node(it->second, prefix + (prefix.empty() ? "" : ".") + it->first.as<std::string>(), out);
    return;
  }
  if (n.IsScalar()) {
    out.emplace_back(prefix, n.Scalar());
    return;
  }
  YAML::Emitter e;
  e << YAML::Flow << n;
  out.emplace_back(prefix, n.IsNull() ? "null" : e.c_str());
}

void add_key(std::vector<std::string>& keys, const std::string& k) {
  if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
}

// A point's folder as sweep.json names it: a plain sub-folder name (never a path out of the sweep).
std::string point_folder(const ordered_json& p, const fs::path& manifest) {
  const std::string f = p.value("folder", std::string());
  if (f.empty() || f == "." || f == ".." || f.find('/') != std::string::npos || f.find('\\') != std::string::npos)
    fail("lminf report: ", manifest.string(), ": point folder \"", f, "\" is not a sub-folder name");
  return f;
}

std::vector<ReportPoint> manifest_points(const fs::path& dir) {
  const fs::path m = dir / kManifest;
  ordered_json j;
  try {
    j = ordered_json::parse(std::ifstream(m));
  } catch (const std::exception& e) {
    fail("lminf report: ", m.string(), " is not readable as JSON (", e.what(), ")");
  }
  if (!j.is_object() || j.value("schema", std::string()) != "lminf.sweep" || !j.contains("points") ||
      !j["points"].is_array())
    fail("lminf report: ", m.string(), " is not a sweep manifest (schema lminf.sweep with a list \"points\")");
  std::vector<ReportPoint> points;
  for (const auto& p : j["points"]) {
    if (!p.is_object()) fail("lminf report: ", m.string(), ": each point must be an object");
    ReportPoint rp{p.value("name", std::string()), point_folder(p, m), {}, std::nullopt};
    for (const auto& o : p.value("overrides", ordered_json::array()))
      if (o.is_object()) rp.overrides.emplace_back(o.value("key", std::string()), o.value("value", std::string()));
    points.push_back(std::move(rp));
  }
  return points;
}

// Sweeps without sweep.json: the sub-folders with a config.yaml, their differing keys as overrides.
std::vector<ReportPoint> config_diff_points(const fs::path& dir) {
  std::vector<fs::path> folders;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && fs::is_regular_file(e.path() / "config.yaml")) folders.push_back(e.path());
  std::sort(folders.begin(), folders.end());
  std::vector<std::vector<std::pair<std::string, std::string>>> configs;
  std::vector<std::string> keys;
  for (const fs::path& f : folders) {
    std::ifstream in(f / "config.yaml");
    std::stringstream ss;
    ss << in.rdbuf();
    try {
      configs.push_back(flatten_yaml(ss.str()));
    } catch (const std::exception&) {
      configs.emplace_back();  // unreadable: its run section says why
    }
    for (const auto& kv : configs.back()) add_key(keys, kv.first);
  }
  auto value_of = [](const std::vector<std::pair<std::string, std::string>>& c, const std::string& k) {
    for (const auto& kv : c)
      if (kv.first == k) return std::optional<std::string>(kv.second);
    return std::optional<std::string>();
  };
  std::vector<ReportPoint> points(folders.size());
  for (const std::string& k : keys) {
    if (k.rfind("output.", 0) == 0) continue;
    bool differs = false;
    for (const auto& c : configs) differs = differs || value_of(c, k) != value_of(configs[0], k);
    for (size_t i = 0; differs && i < folders.size(); ++i)
      points[i].overrides.emplace_back(k, value_of(configs[i], k).value_or(""));
  }
  for (size_t i = 0; i < folders.size(); ++i) {
    points[i].folder = folders[i].filename().string();
    for (const auto& [k, v] : points[i].overrides) points[i].name += (points[i].name.empty() ? "" : ",") + k + "=" + v;
    if (points[i].name.empty()) points[i].name = points[i].folder;
  }
  return points;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> flatten_yaml(const std::string& yaml_text) {
  std::vector<std::pair<std::string, std::string>> out;
  flatten_node(YAML::Load(yaml_text), "", out);
  return out;
}

bool is_sweep_folder(const fs::path& dir) {
  if (fs::is_regular_file(dir / kManifest)) return true;
  if (!fs::is_directory(dir) || fs::exists(dir / "config.yaml")) return false;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && fs::is_regular_file(e.path() / "config.yaml")) return true;
  return false;
}

SweepFolder read_sweep_folder(const fs::path& dir) {
  if (!is_sweep_folder(dir))
    fail("lminf report: ", dir.string(), " is not a sweep folder: it has no ", kManifest,
         " and no sub-folder with a config.yaml");
  SweepFolder s;
  s.dir = dir;
  s.from_manifest = fs::is_regular_file(dir / kManifest);
  s.points = s.from_manifest ? manifest_points(dir) : config_diff_points(dir);
  for (ReportPoint& p : s.points) {
    for (const auto& kv : p.overrides) add_key(s.keys, kv.first);
    if (is_run_folder(dir / p.folder)) p.run = read_run_folder(dir / p.folder);
  }
  s.contents = read_folder_contents(dir, "");
  s.analysis = read_analysis_folder(dir, "");
  return s;
}

}  // namespace lminf
