// What `lminf report` reads from a sweep folder: one sub-folder per point (a run folder each),
// sweep.json naming the points and their overrides (experiments/run/sweep.h writes it), sweep.csv/md,
// and analysis/ with the overlays of every point.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "analysis/report/html/report_folder.h"

namespace lminf {

struct ReportPoint {
  std::string name;                                            // "attention.variant=lambda,attention.local_branch=128"
  std::string folder;                                          // its sub-folder
  std::vector<std::pair<std::string, std::string>> overrides;  // key path -> YAML value text
  std::optional<RunFolder> run;  // absent when the point's folder is not a run folder (not run yet)
};

struct SweepFolder {
  std::filesystem::path dir;
  std::vector<std::string> keys;  // every swept key path, in order of first appearance
  std::vector<ReportPoint> points;
  bool from_manifest = false;  // points from sweep.json; false: sub-folders, keys where configs differ
  FolderContents contents;
  AnalysisFolder analysis;
};

// Whether `dir` holds a sweep: sweep.json, or (sweeps written before it existed) no config.yaml of
// its own and at least one sub-folder with a config.yaml.
bool is_sweep_folder(const std::filesystem::path& dir);

// The sweep in `dir`: points from sweep.json in sweep order; without it, every sub-folder with a
// config.yaml in name order, the swept keys being those whose values differ between the points'
// configs (output.* aside). Throws naming the folder when it is neither.
SweepFolder read_sweep_folder(const std::filesystem::path& dir);

// The key paths -> YAML value texts of a YAML document (nested maps joined with '.', sequences and
// scalars as flow text), in document order.
std::vector<std::pair<std::string, std::string>> flatten_yaml(const std::string& yaml_text);

}  // namespace lminf
