#include "experiments/run/sweep.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "analysis/report/csv_table.h"
#include "framework/io/atomic_file.h"
#include "framework/core/error.h"

namespace lminf {
namespace fs = std::filesystem;

namespace {

std::string scalar_text(const YAML::Node& n) {
  if (n.IsScalar()) return n.Scalar();
  YAML::Emitter e;
  e << YAML::Flow << n;
  return e.c_str();
}

std::string mark(const YAML::Node& n, const std::string& where) {
  const YAML::Mark m = n.Mark();
  if (m.line < 0) return where + ": ";
  return where + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) + ": ";
}

}  // namespace

std::vector<SweepPoint> expand_sweep(const YAML::Node& sweep, const std::string& where) {
  std::vector<SweepPoint> points;
  if (!sweep || sweep.IsNull()) return points;
  if (!sweep.IsMap()) fail(mark(sweep, where), "sweep: expected a map with `grid` and/or `points`");
  for (auto it = sweep.begin(); it != sweep.end(); ++it) {
    const std::string k = it->first.as<std::string>();
    if (k != "grid" && k != "points")
      fail(mark(it->first, where), "sweep: unknown key \"", k, "\" (valid keys: grid, points)");
  }
  if (const YAML::Node grid = sweep["grid"]) {
    if (!grid.IsMap()) fail(mark(grid, where), "sweep.grid: expected a map of key path -> list of values");
    double product = 1;  // the cartesian product's size, before it is built
    for (auto it = grid.begin(); it != grid.end(); ++it)
      if (it->second.IsSequence()) product *= static_cast<double>(it->second.size());
    if (product > kMaxSweepPoints)
      fail(mark(grid, where), "sweep.grid: ", product, " points (the product of the list lengths); a sweep may have at "
           "most ", kMaxSweepPoints, " (split it, or list the points you want under sweep.points)");
    points.push_back(SweepPoint{});
    for (auto it = grid.begin(); it != grid.end(); ++it) {
      const std::string key = it->first.as<std::string>();
      const YAML::Node values = it->second;
      if (!values.IsSequence() || values.size() == 0)
        fail(mark(values, where), "sweep.grid.", key, ": expected a non-empty list of values");
      std::vector<SweepPoint> next;
      for (const auto& p : points) {
        for (const auto& v : values) {
          SweepPoint q = p;
          q.overrides.emplace_back(key, scalar_text(v));
          next.push_back(q);
        }
      }
      points = std::move(next);
    }
  }
  if (const YAML::Node list = sweep["points"]) {
    if (!list.IsSequence()) fail(mark(list, where), "sweep.points: expected a list of maps (key path -> value)");
    if (static_cast<double>(points.size() + list.size()) > kMaxSweepPoints)
      fail(mark(list, where), "sweep: ", points.size() + list.size(), " points; a sweep may have at most ",
           kMaxSweepPoints, " (split it)");
    for (const auto& m : list) {
      if (!m.IsMap()) fail(mark(m, where), "sweep.points: each point must be a map of key path -> value");
      SweepPoint p;
      for (auto it = m.begin(); it != m.end(); ++it) p.overrides.emplace_back(it->first.as<std::string>(), scalar_text(it->second));
      points.push_back(p);
    }
  }
  std::set<std::string> names;
  for (auto& p : points) {
    for (const auto& [k, v] : p.overrides) p.name += (p.name.empty() ? "" : ",") + k + "=" + v;
    if (p.name.empty()) fail(mark(sweep, where), "sweep: a point without overrides");
    if (!names.insert(p.name).second) fail(mark(sweep, where), "sweep: point ", p.name, " appears twice");
  }
  if (points.empty()) fail(mark(sweep, where), "sweep: no points (give `grid` or `points`)");
  return points;
}

std::string sweep_folder_name(const SweepPoint& p) {
  std::string s;
  for (const auto& [k, v] : p.overrides) {
    std::string key = k.substr(k.rfind('.') == std::string::npos ? 0 : k.rfind('.') + 1);
    s += (s.empty() ? "" : "_") + key + "-" + v;
  }
  for (char& c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) c = '_';
  return s;
}

void write_sweep_manifest(const fs::path& dir, const std::vector<SweepPoint>& points) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& p : points) {
    nlohmann::ordered_json overrides = nlohmann::ordered_json::array();
    for (const auto& [k, v] : p.overrides) overrides.push_back({{"key", k}, {"value", v}});
    list.push_back({{"name", p.name}, {"folder", sweep_folder_name(p)}, {"overrides", overrides}});
  }
  const nlohmann::ordered_json j = {{"schema", "lminf.sweep"}, {"schema_version", 1}, {"points", list}};
  fs::create_directories(dir);
  write_file_atomic(dir / "sweep.json", j.dump(2) + "\n");
}

std::string write_sweep_table(const fs::path& dir, const std::vector<SweepPoint>& points) {
  std::vector<std::string> keys;
  for (const auto& p : points)
    for (const auto& [k, v] : p.overrides)
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  std::vector<nlohmann::json> results;
  std::vector<std::string> metrics, buckets;
  for (const auto& p : points) {
    const fs::path r = dir / sweep_folder_name(p) / "results.json";
    nlohmann::json j;
    if (fs::exists(r)) j = nlohmann::json::parse(std::ifstream(r));
    results.push_back(j);
    if (!j.is_object()) continue;
    for (auto it = j.begin(); it != j.end(); ++it)
      if (it.value().is_number() && std::find(metrics.begin(), metrics.end(), it.key()) == metrics.end())
        metrics.push_back(it.key());
    if (j.contains("buckets"))
      for (const auto& b : j["buckets"]) {
        const std::string n = "nll@" + std::to_string(b["start"].get<int64_t>()) + "-" + std::to_string(b["end"].get<int64_t>() - 1);
        if (std::find(buckets.begin(), buckets.end(), n) == buckets.end()) buckets.push_back(n);
      }
  }
  std::vector<std::string> header = {"point"};  // the point's folder under `dir`
  header.insert(header.end(), keys.begin(), keys.end());
  header.insert(header.end(), metrics.begin(), metrics.end());
  header.insert(header.end(), buckets.begin(), buckets.end());
  std::ostringstream csv, md;
  for (size_t i = 0; i < header.size(); ++i) csv << (i ? "," : "") << csv_cell(header[i]);
  csv << "\n";
  md << "|";
  for (const auto& h : header) md << " " << h << " |";
  md << "\n|";
  for (size_t i = 0; i < header.size(); ++i) md << " --- |";
  md << "\n";
  for (size_t pi = 0; pi < points.size(); ++pi) {
    std::vector<std::string> row = {sweep_folder_name(points[pi])};
    for (const auto& k : keys) {
      std::string v;
      for (const auto& [pk, pv] : points[pi].overrides)
        if (pk == k) v = pv;
      row.push_back(v);
    }
    const nlohmann::json& j = results[pi];
    auto num = [](double x) {
      std::ostringstream os;
      os.precision(6);
      os << x;
      return os.str();
    };
    for (const auto& m : metrics) row.push_back(j.is_object() && j.contains(m) && j[m].is_number() ? num(j[m].get<double>()) : (j.is_object() ? "" : "not run"));
    for (const auto& b : buckets) {
      std::string v;
      if (j.is_object() && j.contains("buckets"))
        for (const auto& bk : j["buckets"]) {
          const std::string n = "nll@" + std::to_string(bk["start"].get<int64_t>()) + "-" + std::to_string(bk["end"].get<int64_t>() - 1);
          if (n == b) v = num(bk["mean_nll"].get<double>());
        }
      row.push_back(v);
    }
    for (size_t i = 0; i < row.size(); ++i) csv << (i ? "," : "") << csv_cell(row[i]);
    csv << "\n";
    md << "|";
    for (const auto& c : row) md << " " << c << " |";
    md << "\n";
  }
  write_file_atomic(dir / "sweep.csv", csv.str());
  write_file_atomic(dir / "sweep.md", md.str());
  return md.str();
}

}  // namespace lminf
