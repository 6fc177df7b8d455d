// Sweeps for ablations: a `sweep:` section turns one experiment into several points, each a set of
// --set-style overrides, each run into its own folder under output.dir. Completed points (their
// results.json exists) are skipped on re-run; a combined table (CSV and Markdown, one row per point
// with its key metrics) is written at the end.
//
//   sweep:
//     grid: {attention.local_branch: [64, 128], attention.global_branch: [4, 10]}  # product
//     points: [{attention: {variant: streaming, recent_size: 128}}]              # appended as is
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace lminf {

struct SweepPoint {
  std::string name;  // folder name, e.g. "attention.local_branch=64,attention.global_branch=4"
  std::vector<std::pair<std::string, std::string>> overrides;  // key path -> YAML value text
};

// At most this many points (a grid of a few long lists multiplies out of reach).
inline constexpr int64_t kMaxSweepPoints = 10000;

// Expands a sweep section (grid: product in key order, then points). `where` names the file for errors.
// More than kMaxSweepPoints points are refused before any is built.
std::vector<SweepPoint> expand_sweep(const YAML::Node& sweep, const std::string& where);

// A folder-safe version of a point name.
std::string sweep_folder_name(const SweepPoint& p);

// sweep.json in `dir` (created if needed), written atomically before the first point runs, so a
// sweep stopped half-way still names its points: {"schema": "lminf.sweep", "schema_version": 1,
// "points": [{"name", "folder", "overrides": [{"key", "value"}, ...]}, ...]} in sweep order.
// `lminf report` reads it to label each point by its overrides.
void write_sweep_manifest(const std::filesystem::path& dir, const std::vector<SweepPoint>& points);

// The combined table over the points' results.json files (missing ones are listed as not run).
// Columns: the point's folder (`point`), the swept keys, then the scalar metrics of the results, then for each
// NLL bucket its mean NLL. Writes sweep.csv and sweep.md into `dir` atomically; returns the Markdown.
std::string write_sweep_table(const std::filesystem::path& dir, const std::vector<SweepPoint>& points);

}  // namespace lminf
