// `lminf report DIR`: one self-contained HTML page (DIR/report.html) for a run folder or a sweep
// folder: the results of every results.json (rendered generically, so a new task needs no change
// here), the sweep table (one row per point, its overrides as columns), every figure of the folder
// and of its `lminf analyze` analysis (embedded), the factor summaries, records, the HDF5 outputs,
// the provenance and the resolved config. Sortable tables; inline CSS and JS, no network.
// docs/analysis.md describes the page.
#pragma once

#include <filesystem>
#include <string>

namespace lminf {

struct ReportOptions {
  std::filesystem::path dir;  // a run's or a sweep's output.dir
  bool analyze = true;        // run `lminf analyze` into DIR/analysis when its summary.json is missing
};

// Writes DIR/report.html atomically and returns its path. Throws naming the folder when it is
// neither a run folder (config.yaml or results.json) nor a sweep folder (sweep.json, or sub-folders
// with a config.yaml).
std::filesystem::path write_report(const ReportOptions& opts);

// The page for `opts.dir` (what write_report writes), without writing it; runs the analysis first
// as write_report does.
std::string report_html(const ReportOptions& opts);

}  // namespace lminf
