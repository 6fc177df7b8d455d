// `lminf analyze`: the factor analyses of one or more runs, as tables (CSV, JSON) and plots (PNG and
// SVG through gnuplot), with runs overlaid for comparison (e.g. vanilla against lambda attention).
// Inputs are factor dumps (lminf.factors) and perplexity outputs (lminf.token_nll); what each file
// holds decides which analyses run. docs/analysis.md describes every output.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lminf {

struct AnalyzeOptions {
  std::vector<std::filesystem::path> inputs;
  std::vector<std::string> labels;  // one per input, or none (then "<name> (<variant>)")
  std::filesystem::path out_dir;
  double ema_gamma = 0.99;          // NLL smoothing: s_t = gamma s_{t-1} + (1 - gamma) x_t
  int64_t first_tokens = 4;         // factor 3: positions < first_tokens are "the first tokens"
  std::optional<int64_t> head;      // factor 3 PCA of per-head sites: this global head (default: first recorded)
  int64_t position_bin = 0;         // curves over positions/distances: bin width (0: 1, or T / 2048 when T > 4096)
  bool plots = true;                // false: tables only
  bool overwrite = false;           // replace an earlier analysis in out_dir
};

// Runs every analysis the inputs allow, writes the tables and plots into out_dir and returns the
// summary (also written as out_dir/summary.json).
nlohmann::json analyze(const AnalyzeOptions& opts);

}  // namespace lminf
