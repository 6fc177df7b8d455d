#include "analysis/report/html/report.h"

#include <optional>

#include "analysis/report/analyze.h"
#include "analysis/report/html/html_text.h"
#include "analysis/report/html/report_page.h"
#include "analysis/report/html/sweep_folder.h"
#include "framework/core/error.h"
#include "framework/core/version.h"
#include "framework/io/atomic_file.h"

namespace lminf {
namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

// The HDF5 outputs of a folder that `lminf analyze` reads, each with its label ("" for the default).
struct AnalysisInputs {
  std::vector<fs::path> files;
  std::vector<std::string> labels;
};

void add_inputs(const FolderContents& c, const std::string& label, AnalysisInputs& in) {
  for (const H5File& f : c.h5) {
    if (!f.analyze_input) continue;
    in.files.push_back(c.dir / fs::path(f.name).filename());
    in.labels.push_back(label);
  }
}

std::string analyze_command(const AnalysisInputs& in, const fs::path& out) {
  std::string cmd = "lminf analyze";
  for (size_t i = 0; i < in.files.size(); ++i) {
    cmd += " " + in.files[i].string();
    if (!in.labels[i].empty()) cmd += " --label '" + in.labels[i] + "'";
  }
  return cmd + " --out " + out.string();
}

// Makes sure `dir`/analysis holds the analysis of `in` (runs `lminf analyze` when its summary.json is
// missing and opts.analyze), then reads it; the note says what happened, or how to make the plots.
AnalysisFolder ensure_analysis(AnalysisFolder a, const fs::path& dir, const AnalysisInputs& in, bool run_analyze) {
  if (in.files.empty()) return a;
  if (a.summary) {
    if (a.summary->is_object() && a.summary->contains("plots_skipped"))
      a.note = "the analysis in " + a.dir.string() + " has no plots (" + json_cell_text((*a.summary)["plots_skipped"]) +
               "); redraw them with: " + analyze_command(in, a.dir) + " --overwrite";
    return a;
  }
  if (!run_analyze) {
    a.note = a.dir.string() +
             " is missing, so the factor and NLL plots are not shown; make them with: " + analyze_command(in, a.dir) +
             " (or run lminf report without --no-analyze)";
    return a;
  }
  AnalyzeOptions o;
  o.inputs = in.files;
  if (std::any_of(in.labels.begin(), in.labels.end(), [](const std::string& l) { return !l.empty(); }))
    o.labels = in.labels;
  o.out_dir = dir / "analysis";
  std::string note;
  try {
    analyze(o);
    note = "analysed now: " + analyze_command(in, o.out_dir);
  } catch (const std::exception& e) {
    note = "lminf analyze failed on " + dir.string() + ": " + e.what();
  }
  AnalysisFolder fresh = read_analysis_folder(dir, "");
  fresh.note = note;
  if (fresh.summary && fresh.summary->contains("plots_skipped"))
    fresh.note += "; plots skipped: " + json_cell_text((*fresh.summary)["plots_skipped"]);
  return fresh;
}

std::string footer() {
  return "written by lminf report, lminf " + std::string(version()) + " (" + git_revision() + ") on " + host_name() +
         " at " + utc_now() + "; self-contained: no network needed";
}

}  // namespace

std::string report_html(const ReportOptions& opts) {
  const fs::path& dir = opts.dir;
  if (!fs::is_directory(dir))
    fail("lminf report: ", dir.string(),
         " does not exist or is not a folder (give the output.dir of a run or a sweep)");
  if (is_run_folder(dir)) {
    RunFolder run = read_run_folder(dir);
    AnalysisInputs in;
    add_inputs(run.contents, "", in);
    run.analysis = ensure_analysis(run.analysis, dir, in, opts.analyze);
    return run_page_html(run, footer());
  }
  if (!is_sweep_folder(dir))
    fail("lminf report: ", dir.string(),
         " is neither a run folder (no config.yaml, no results.json) nor a sweep folder "
         "(no sweep.json, no sub-folder with a config.yaml); give the output.dir of a run or of a sweep");
  SweepFolder sweep = read_sweep_folder(dir);
  AnalysisInputs in;
  for (const ReportPoint& p : sweep.points) {
    std::string label;
    for (const auto& kv : p.overrides) label += (label.empty() ? "" : " ") + kv.second;
    if (p.run) add_inputs(p.run->contents, label.empty() ? p.name : label, in);
  }
  sweep.analysis = ensure_analysis(sweep.analysis, dir, in, opts.analyze);
  return sweep_page_html(sweep, footer());
}

fs::path write_report(const ReportOptions& opts) {
  const std::string page = report_html(opts);
  const fs::path out = opts.dir / "report.html";
  write_file_atomic(out, page);
  return out;
}

}  // namespace lminf
