#include "analysis/report/analyze.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "analysis/dump_schema.h"
#include "analysis/report/csv_table.h"
#include "analysis/report/factor_curves.h"
#include "analysis/report/gnuplot.h"
#include "analysis/report/pca.h"
#include "analysis/report/run_file.h"
#include "framework/io/atomic_file.h"
#include "framework/core/error.h"
#include "framework/core/format.h"
#include "framework/core/logging.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;

struct Tables {
  CsvTable f1_bound{{"run_index", "run", "layer", "distance", "bound_mean", "bound_std", "n"}};
  CsvTable f1_buckets{{"run_index", "run", "layer", "bucket_lo", "bucket_hi", "max_logit", "mean_logit",
                       "bound_mean", "bound_std", "n"}};
  CsvTable f2{{"run_index", "run", "layer", "position", "entropy_mean", "entropy_std", "log_bound", "n"}};
  CsvTable f3_sep{{"run_index", "run", "site", "layer", "head", "n_points", "n_first", "separation",
                   "separation_pca", "explained_pc1", "explained_pc2"}};
  CsvTable f3_pca{{"run_index", "run", "site", "layer", "head", "sequence", "position", "first", "pc1", "pc2"}};
  CsvTable nll{{"run_index", "run", "position", "nll_mean", "nll_std", "n", "nll_ema"}};
};

// What the figures show, gathered while the tables are filled.
struct Figures {
  std::vector<std::string> labels;         // by run index
  std::vector<int64_t> trained;            // by run index (0: unknown)
  std::set<int64_t> f1_layers, f1b_layers, f2_layers;
  std::set<int64_t> f1_runs, f1b_runs, f2_runs;  // runs with data for each figure
  std::map<std::pair<int64_t, std::string>, std::vector<std::pair<int64_t, std::string>>> pca;  // (run, site) -> (layer, title)
  bool nll = false;
  int64_t max_position = 0;  // the longest positions/distances axis of any run
};

// Layers with a group "layer_LL" (dump_schema::layer_group) under `group`, ascending.
std::vector<int64_t> layer_groups(const H5Reader& h5, const std::string& group) {
  std::vector<int64_t> out;
  if (!h5.exists(group)) return out;
  for (const auto& name : h5.list(group)) {
    const std::string prefix = dump_schema::kLayerPrefix;
    if (name.rfind(prefix, 0) != 0) continue;
    try {
      out.push_back(std::stoll(name.substr(prefix.size())));
    } catch (const std::exception&) {
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// h5.read(ds) once its shape matches the schema (docs/hdf5.md): `want` holds each dimension's size,
// -1 where any size will do; `schema` names the dimensions ("[n, n_heads, n_buckets]"). A damaged or
// edited dump is refused naming the file, the dataset and both shapes before its data are used.
at::Tensor read_as(const H5Reader& h5, const std::string& ds, const std::vector<int64_t>& want, const char* schema) {
  const std::vector<int64_t> shape = h5.shape(ds);
  bool ok = shape.size() == want.size();
  for (size_t i = 0; ok && i < want.size(); ++i) ok = want[i] < 0 || want[i] == shape[i];
  if (!ok) {
    std::string expected = "[";
    for (size_t i = 0; i < want.size(); ++i) expected += (i ? ", " : "") + (want[i] < 0 ? std::string("*") : std::to_string(want[i]));
    fail(h5.path().string(), ": dataset '", ds, "' has shape ", shape_str(shape), ", expected ", schema, " = ",
         expected, "]: the dump is damaged or was not written by this lminf (docs/hdf5.md)");
  }
  return h5.read(ds);
}

// Every value of the int64 tensor `x` (dataset `ds`) in [0, limit).
void check_range(const H5Reader& h5, const std::string& ds, const at::Tensor& x, int64_t limit, const char* what) {
  if (x.numel() == 0) return;
  const int64_t lo = x.min().item<int64_t>(), hi = x.max().item<int64_t>();
  if (lo < 0 || hi >= limit)
    fail(h5.path().string(), ": dataset '", ds, "' holds ", lo < 0 ? lo : hi, ", outside [0, ", limit, ") (", what,
         "): the dump is damaged or was not written by this lminf (docs/hdf5.md)");
}

// (layer, data) of each layer group of `factor` holding a non-empty dataset `name` of rank 3 whose
// last dimension is `last` (-1: any), by layer.
std::vector<std::pair<int64_t, at::Tensor>> layer_datasets(const H5Reader& h5, const std::string& factor,
                                                           const std::string& name, int64_t last, const char* schema) {
  std::vector<std::pair<int64_t, at::Tensor>> out;
  for (int64_t layer : layer_groups(h5, factor)) {
    const std::string ds = dump_schema::layer_prefix(factor, layer) + name;
    if (!h5.exists(ds)) continue;
    at::Tensor x = read_as(h5, ds, {-1, -1, last}, schema);
    if (x.size(0) > 0) out.emplace_back(layer, x);
  }
  return out;
}

int64_t bin_width(const AnalyzeOptions& o, int64_t T) {
  if (o.position_bin > 0) return o.position_bin;
  return T > 4096 ? (T + 2047) / 2048 : 1;
}

// Distances 15, 31, ..., 2^k - 1 below T, and T - 1.
std::vector<int64_t> checkpoints(int64_t T) {
  std::vector<int64_t> out;
  for (int64_t d = 15; d < T - 1; d = 2 * d + 1) out.push_back(d);
  if (T > 0) out.push_back(T - 1);
  return out;
}

// Windows [2^k, 2^(k+1)) from [16, 32) up to T, the last one cut at T.
std::vector<std::pair<int64_t, int64_t>> windows(int64_t T) {
  std::vector<std::pair<int64_t, int64_t>> out;
  for (int64_t lo = 16; lo < T; lo *= 2) out.emplace_back(lo, std::min(2 * lo, T));
  return out;
}

double bin_mean(const std::vector<double>& v, int64_t lo, int64_t hi) {
  double s = 0;
  int64_t k = 0;
  for (int64_t i = lo; i < hi; ++i) {
    const double x = v[static_cast<size_t>(i)];
    if (std::isfinite(x)) {
      s += x;
      ++k;
    }
  }
  return k ? s / static_cast<double>(k) : std::nan("");
}

void factor1(const RunFile& run, int64_t ri, const AnalyzeOptions& o, Tables& t, Figures& fig, nlohmann::json& js) {
  const H5Reader& h5 = *run.h5;
  if (h5.exists(dump_schema::kQueryPosition)) {
    const at::Tensor positions = read_as(h5, dump_schema::kQueryPosition, {-1}, "[r]");
    for (int64_t layer : layer_groups(h5, dump_schema::kFactor1)) {
      const std::string ds = dump_schema::query_logits(layer);
      if (!h5.exists(ds)) continue;
      const at::Tensor logits = read_as(h5, ds, {positions.size(0), -1, -1}, "[r, n_heads, max_length]");
      if (logits.size(0) == 0) continue;
      check_range(h5, dump_schema::kQueryPosition, positions.to(at::kLong), logits.size(2), "positions of max_length");
      const Curve c = logit_bound_by_distance(logits, positions);
      const int64_t T = c.size(), bin = bin_width(o, T);
      for (int64_t d = 0; d < T; ++d) {
        if (bin > 1 && d % bin != bin - 1 && d != T - 1) continue;
        const size_t i = static_cast<size_t>(d);
        if (c.n[i] == 0) continue;
        t.f1_bound.add({csv_cell(ri), csv_cell(run.label), csv_cell(layer), csv_cell(d), csv_cell(c.mean[i]),
                        csv_cell(c.std[i]), csv_cell(c.n[i])});
      }
      nlohmann::json at_d;
      for (int64_t d : checkpoints(T)) at_d[std::to_string(d)] = c.mean[static_cast<size_t>(d)];
      js["factor1"][dump_schema::layer_group(layer)] = {{"bound_at_distance", at_d}, {"lines", logits.size(0) * logits.size(1)}};
      fig.f1_layers.insert(layer);
      fig.f1_runs.insert(ri);
      fig.max_position = std::max(fig.max_position, T);
    }
  }
  if (h5.exists(dump_schema::kDistanceEdges)) {
    const at::Tensor edges = read_as(h5, dump_schema::kDistanceEdges, {-1}, "[n_buckets + 1]");
    const int64_t nb = edges.size(0) - 1;
    if (nb < 1)
      fail(h5.path().string(), ": dataset '", dump_schema::kDistanceEdges, "' has ", edges.size(0),
           " edges, at least 2 are needed (docs/hdf5.md)");
    for (const auto& [layer, bm] :
         layer_datasets(h5, dump_schema::kFactor1, "bucket_max", nb, "[n, n_heads, n_buckets]")) {
      const std::string g = dump_schema::layer_prefix(dump_schema::kFactor1, layer);
      const std::vector<int64_t> same(bm.sizes().begin(), bm.sizes().end());
      const Curve c = bucket_bound(bm);
      const at::Tensor mx = bm.reshape({-1, nb}).amax(0).to(at::kDouble);
      const at::Tensor sum =
          read_as(h5, g + "bucket_sum", same, "bucket_max's [n, n_heads, n_buckets]").reshape({-1, nb}).sum(0).to(at::kDouble);
      const at::Tensor cnt =
          read_as(h5, g + "bucket_count", same, "bucket_max's [n, n_heads, n_buckets]").reshape({-1, nb}).sum(0).to(at::kDouble);
      const at::Tensor mean = sum / cnt;
      nlohmann::json rows = nlohmann::json::array();
      for (int64_t b = 0; b < nb; ++b) {
        const size_t i = static_cast<size_t>(b);
        const int64_t lo = edges[b].item<int64_t>(), hi = edges[b + 1].item<int64_t>();
        if (cnt[b].item<double>() == 0) continue;
        t.f1_buckets.add({csv_cell(ri), csv_cell(run.label), csv_cell(layer), csv_cell(lo), csv_cell(hi),
                          csv_cell(mx[b].item<double>()), csv_cell(mean[b].item<double>()), csv_cell(c.mean[i]),
                          csv_cell(c.std[i]), csv_cell(c.n[i])});
      }
      js["factor1_buckets"][dump_schema::layer_group(layer)] = {{"max_logit", mx.max().item<double>()},
                                                 {"buckets", nb}, {"sequences", bm.size(0)}};
      fig.f1b_layers.insert(layer);
      fig.f1b_runs.insert(ri);
    }
  }
}

void factor2(const RunFile& run, int64_t ri, const AnalyzeOptions& o, Tables& t, Figures& fig, nlohmann::json& js) {
  const H5Reader& h5 = *run.h5;
  for (const auto& [layer, ent] : layer_datasets(h5, dump_schema::kFactor2, "entropy", -1, "[n, n_heads, max_length]")) {
    const std::string g = dump_schema::layer_prefix(dump_schema::kFactor2, layer);
    const std::vector<int64_t> same(ent.sizes().begin(), ent.sizes().end());
    const Curve ce = entropy_by_position(ent);
    const Curve cb = log_bound_by_position(read_as(h5, g + "visible_keys", same, "entropy's [n, n_heads, max_length]"));
    const int64_t T = ce.size(), bin = bin_width(o, T);
    for (int64_t lo = 0; lo < T; lo += bin) {
      const int64_t hi = std::min(T, lo + bin);
      const double m = bin_mean(ce.mean, lo, hi);
      if (!std::isfinite(m)) continue;
      t.f2.add({csv_cell(ri), csv_cell(run.label), csv_cell(layer), csv_cell(lo), csv_cell(m),
                csv_cell(bin_mean(ce.std, lo, hi)), csv_cell(bin_mean(cb.mean, lo, hi)),
                csv_cell(ce.n[static_cast<size_t>(lo)])});
    }
    nlohmann::json w = nlohmann::json::array();
    for (auto [lo, hi] : windows(T))
      w.push_back({{"lo", lo}, {"hi", hi}, {"entropy", window_mean(ce, lo, hi)}, {"log_bound", window_mean(cb, lo, hi)}});
    js["factor2"][dump_schema::layer_group(layer)] = {{"windows", w}};
    fig.f2_layers.insert(layer);
    fig.f2_runs.insert(ri);
    fig.max_position = std::max(fig.max_position, T);
  }
}

void factor3(const RunFile& run, int64_t ri, const AnalyzeOptions& o, Tables& t, Figures& fig, nlohmann::json& js) {
  const H5Reader& h5 = *run.h5;
  if (!h5.exists(dump_schema::kSamplePosition)) return;
  const at::Tensor pos = read_as(h5, dump_schema::kSamplePosition, {-1}, "[m]");
  const int64_t n = pos.size(0);
  const at::Tensor seq = read_as(h5, dump_schema::kSampleSequence, {n}, "sample_position's [m]");
  if (n < 2) return;
  const at::Tensor first = pos < o.first_tokens;
  const int64_t n_first = first.sum().item<int64_t>();
  js["factor3"] = nlohmann::json::array();
  fig.max_position = std::max(fig.max_position, pos.max().item<int64_t>() + 1);

  // One (site, layer, head) feature set: separation in full space; with `pca`, the 2-D PCA rows too.
  auto analyse = [&](const std::string& site, int64_t layer, int64_t head, const at::Tensor& x, bool pca) {
    if (!at::isfinite(x).all().item<bool>()) {
      log_warn(run.path.string(), ": ", site, " layer ", layer, " head ", head, " holds non-finite values; skipped");
      return;
    }
    const double sep = separation_score(x, first);
    double sep_pca = std::nan("");
    std::array<double, 2> ev{std::nan(""), std::nan("")};
    if (pca) {
      const Pca2 p = pca_2d(x);
      sep_pca = separation_score(p.scores, first);
      ev = p.explained_variance_ratio;
      const at::Tensor sc = p.scores.contiguous();
      const double* s = sc.data_ptr<double>();
      for (int64_t i = 0; i < n; ++i)
        t.f3_pca.add({csv_cell(ri), csv_cell(run.label), site, csv_cell(layer), csv_cell(head),
                      csv_cell(seq[i].item<int64_t>()), csv_cell(pos[i].item<int64_t>()),
                      csv_cell(static_cast<int64_t>(first[i].item<bool>())), csv_cell(s[2 * i]), csv_cell(s[2 * i + 1])});
      char title[160];
      std::snprintf(title, sizeof title, "%s %lld%s (separation %.2f, PCA %.2f)", site.c_str(),
                    static_cast<long long>(layer), head >= 0 ? (" head " + std::to_string(head)).c_str() : "", sep,
                    sep_pca);
      fig.pca[{ri, site}].emplace_back(layer, title);
    }
    t.f3_sep.add({csv_cell(ri), csv_cell(run.label), site, csv_cell(layer), csv_cell(head), csv_cell(n),
                  csv_cell(n_first), csv_cell(sep), csv_cell(sep_pca), csv_cell(ev[0]), csv_cell(ev[1])});
    js["factor3"].push_back({{"site", site}, {"layer", layer}, {"head", head}, {"separation", sep},
                             {"separation_pca", sep_pca}, {"points", n}, {"first_points", n_first}});
  };

  if (h5.exists(dump_schema::kHiddenGroup)) {
    for (const auto& name : h5.list(dump_schema::kHiddenGroup)) {
      const std::string prefix = dump_schema::kHiddenPrefix;
      if (name.rfind(prefix, 0) != 0) continue;
      const std::string ds = std::string(dump_schema::kHiddenGroup) + "/" + name;
      int64_t index = 0;
      try {
        index = std::stoll(name.substr(prefix.size()));
      } catch (const std::exception&) {
        fail(h5.path().string(), ": dataset '", ds, "' is not named ", prefix, "LL (docs/hdf5.md)");
      }
      analyse("hidden_states", index, -1, read_as(h5, ds, {n, -1}, "[m, hidden_size], m rows as sample_position"), true);
    }
  }
  for (const std::string site : {"query", "key", "attn_out"}) {
    const std::string group = dump_schema::feature_site_group(site);
    if (!h5.exists(group)) continue;
    const std::vector<int64_t> heads = h5.attr_ints(dump_schema::kFactor3, site == "key" ? "kv_heads" : "heads");
    // The plotted head: --head (a query head; its key/value head for keys), else the first recorded.
    int64_t want = heads.empty() ? 0 : heads[0];
    if (o.head) {
      want = *o.head;
      if (site == "key") {
        const int64_t n_head = h5.attr_int("/", "n_head"), n_head_kv = h5.attr_int("/", "n_head_kv");
        if (n_head_kv <= 0 || n_head <= 0 || n_head % n_head_kv != 0)
          fail(h5.path().string(), ": attributes n_head (", n_head, ") and n_head_kv (", n_head_kv,
               ") must be positive, n_head a multiple of n_head_kv (docs/hdf5.md)");
        const int64_t g = n_head / n_head_kv;
        want = *o.head / g;
      }
    }
    for (int64_t layer : layer_groups(h5, group)) {
      const at::Tensor x = read_as(h5, group + "/" + dump_schema::layer_group(layer), {n, -1, -1},
                                   "[m, heads, head_dim], m rows as sample_position");
      for (int64_t s = 0; s < x.size(1); ++s) {
        const int64_t head = s < static_cast<int64_t>(heads.size()) ? heads[static_cast<size_t>(s)] : s;
        analyse(site, layer, head, x.select(1, s), head == want);
      }
    }
  }
}

void nll(const RunFile& run, int64_t ri, const AnalyzeOptions& o, Tables& t, Figures& fig, nlohmann::json& js) {
  const at::Tensor x = run.h5->read(dump_schema::kTokenNllDataset);
  if (x.dim() != 2 || x.size(0) == 0) return;
  const Curve c = nll_by_position(x);
  const std::vector<double> e = ema(c.mean, o.ema_gamma);
  const int64_t T = c.size(), bin = bin_width(o, T);
  for (int64_t lo = 0; lo < T; lo += bin) {
    const int64_t hi = std::min(T, lo + bin);
    const double m = bin_mean(c.mean, lo, hi);
    if (!std::isfinite(m)) continue;
    t.nll.add({csv_cell(ri), csv_cell(run.label), csv_cell(lo), csv_cell(m), csv_cell(bin_mean(c.std, lo, hi)),
               csv_cell(c.n[static_cast<size_t>(lo)]), csv_cell(e[static_cast<size_t>(hi - 1)])});
  }
  nlohmann::json w = nlohmann::json::array();
  for (auto [lo, hi] : windows(T)) w.push_back({{"lo", lo}, {"hi", hi}, {"nll", window_mean(c, lo, hi)}});
  js["nll"] = {{"windows", w}, {"ema_gamma", o.ema_gamma}, {"sequences", x.size(0)}};
  fig.nll = true;
  fig.max_position = std::max(fig.max_position, T);
}

// ---- figures ----------------------------------------------------------------------------------

struct Layout {
  int64_t rows, cols;
};
Layout grid(int64_t panels) {
  int64_t cols = 1;
  while (cols * cols < panels) ++cols;
  return {(panels + cols - 1) / cols, cols};
}

// The script body is drawn twice: PNG, then SVG.
std::string two_terminals(const std::string& stem, Layout l, const std::string& body) {
  const int64_t w = 430 * l.cols, h = 360 * l.rows + 30;
  std::string s = "# generated by lminf analyze; rerun with: gnuplot " + stem + ".gp\n"
                  "set datafile separator \",\"\nset datafile missing \"nan\"\n";
  s += "set terminal pngcairo noenhanced size " + std::to_string(w) + "," + std::to_string(h) + " font \",9\"\n";
  s += "set output \"" + stem + ".png\"\n" + body + "unset output\n";
  s += "set terminal svg noenhanced size " + std::to_string(w) + "," + std::to_string(h) + " font \"Sans,9\"\n";
  s += "set output \"" + stem + ".svg\"\n" + body + "unset output\n";
  return s;
}

std::string trained_marks(const Figures& f) {
  std::string s = "unset arrow\n";
  std::set<int64_t> seen;
  for (int64_t L : f.trained)
    if (L > 0 && L < f.max_position && seen.insert(L).second)
      s += "set arrow from " + std::to_string(L) + ", graph 0 to " + std::to_string(L) +
           ", graph 1 nohead dt 2 lc rgb \"gray40\"\n";
  return s;
}

std::string filter(int64_t ri, int64_t layer, const std::string& col) {
  return "(($1==" + std::to_string(ri) + " && $3==" + std::to_string(layer) + ") ? " + col + " : NaN)";
}

std::string lines_figure(const Figures& f, const std::set<int64_t>& layers, const std::set<int64_t>& runs,
                         const std::string& csv,
                         const std::string& title, const std::string& xlabel, const std::string& ylabel,
                         int xcol, int mean_col, int std_col, int bound_col, bool marks) {
  std::string body = "set multiplot layout " + std::to_string(grid(static_cast<int64_t>(layers.size())).rows) + "," +
                     std::to_string(grid(static_cast<int64_t>(layers.size())).cols) + " title " +
                     gnuplot_quote(title) + "\n";
  body += "set key below\nset grid\nset autoscale xfixmax\nset xlabel " + gnuplot_quote(xlabel) + "\nset ylabel " + gnuplot_quote(ylabel) + "\n";
  body += marks ? trained_marks(f) : "unset arrow\n";
  const std::string x = "$" + std::to_string(xcol), m = "$" + std::to_string(mean_col);
  for (int64_t layer : layers) {
    body += "set title \"layer " + std::to_string(layer) + "\"\nplot ";
    std::string parts;
    for (size_t ri = 0; ri < f.labels.size(); ++ri) {
      if (!runs.count(static_cast<int64_t>(ri))) continue;
      const std::string c = " lc " + std::to_string(ri + 1);
      const int64_t r = static_cast<int64_t>(ri);
      auto add = [&](const std::string& p) { parts += (parts.empty() ? "" : ", \\\n     ") + p; };
      if (std_col > 0) {
        const std::string sd = "$" + std::to_string(std_col);
        add(gnuplot_quote(csv) + " skip 1 using " + filter(r, layer, x) + ":(" + m + "-" + sd + "):(" + m + "+" + sd +
            ") with filledcurves fs transparent solid 0.18 noborder" + c + " notitle");
      }
      add(gnuplot_quote(csv) + " skip 1 using " + filter(r, layer, x) + ":(" + m + ") with lines lw 1.5" + c +
          " title " + gnuplot_quote(f.labels[ri]));
      if (bound_col > 0)
        add(gnuplot_quote(csv) + " skip 1 using " + filter(r, layer, x) + ":($" + std::to_string(bound_col) + ")" +
            " with lines dt 2 lw 1" + c + " title " + gnuplot_quote("log(keys) " + f.labels[ri]));
    }
    body += parts + "\n";
  }
  body += "unset multiplot\n";
  return body;
}

std::string pca_figure(const Figures& f, int64_t ri, const std::string& site,
                       const std::vector<std::pair<int64_t, std::string>>& panels, int64_t first_tokens) {
  const Layout l = grid(static_cast<int64_t>(panels.size()));
  std::string body = "set multiplot layout " + std::to_string(l.rows) + "," + std::to_string(l.cols) + " title " +
                     gnuplot_quote("2-D PCA of " + site + " coloured by position: " + f.labels[static_cast<size_t>(ri)]) + "\n";
  body += "unset arrow\nset grid\nset key top right\nset xlabel \"PC1\"\nset ylabel \"PC2\"\n"
          "set palette defined (0 \"blue\", 1 \"red\")\nset cblabel \"position\"\nset cbrange [0:" +
          std::to_string(std::max<int64_t>(f.max_position, 1)) + "]\n";
  for (const auto& [layer, title] : panels) {
    const std::string sel = "($1==" + std::to_string(ri) + " && strcol(3) eq " + gnuplot_quote(site) +
                            " && $4==" + std::to_string(layer) + ")";
    body += "set title " + gnuplot_quote(title) + "\n";
    body += "plot \"factor3_pca.csv\" skip 1 using (" + sel + " ? $9 : NaN):10:7 with points pt 7 ps 0.35 lc palette notitle, \\\n"
            "     \"factor3_pca.csv\" skip 1 using ((" + sel + " && $8==1) ? $9 : NaN):10 with points pt 6 ps 1.6 lw 1.5 "
            "lc rgb \"black\" title " + gnuplot_quote("positions < " + std::to_string(first_tokens)) + "\n";
  }
  body += "unset multiplot\n";
  return body;
}

}  // namespace

// The gnuplot figures of the tables (PNG and SVG each); the names drawn, or why none were.
static nlohmann::json draw_plots(const AnalyzeOptions& o, const Tables& t, const Figures& fig, const std::vector<RunFile>& runs,
                                 nlohmann::json& summary) {
  nlohmann::json plots = nlohmann::json::array();
  const std::string gp = o.plots ? find_gnuplot() : "";
  if (!o.plots) {
    summary["plots_skipped"] = "--no-plots";
  } else if (gp.empty()) {
    summary["plots_skipped"] = "gnuplot is not installed (apt-get install gnuplot-nox); tables were written";
    log_warn("lminf analyze: gnuplot not found on PATH; wrote the tables, skipped the plots");
  } else {
    auto plot = [&](const std::string& stem, Layout l, const std::string& body) {
      run_gnuplot(gp, o.out_dir / (stem + ".gp"), two_terminals(stem, l, body));
      plots.push_back(stem + ".png");
      plots.push_back(stem + ".svg");
    };
    auto panels = [](const std::set<int64_t>& s) { return grid(static_cast<int64_t>(s.size())); };
    if (!t.f1_bound.rows.empty())
      plot("factor1_bound", panels(fig.f1_layers),
           lines_figure(fig, fig.f1_layers, fig.f1_runs, "factor1_bound.csv", "Factor 1: running-max logit bound of the chosen queries (mean +/- std over sequences and heads)",
                        "distance", "logit bound", 4, 5, 6, 0, true));
    if (!t.f1_buckets.rows.empty())
      plot("factor1_buckets", panels(fig.f1b_layers),
           lines_figure(fig, fig.f1b_layers, fig.f1b_runs, "factor1_buckets.csv", "Factor 1, all queries: running max of the per-bucket maximum logit (mean +/- std over sequences and heads)",
                        "distance (bucket start)", "logit bound", 4, 8, 9, 0, true));
    if (!t.f2.rows.empty())
      plot("factor2_entropy", panels(fig.f2_layers),
           lines_figure(fig, fig.f2_layers, fig.f2_runs, "factor2_entropy.csv", "Factor 2: attention entropy (mean +/- std over sequences and heads); dashed: log(visible keys)",
                        "position", "entropy (nats)", 4, 5, 6, 7, true));
    for (const auto& [key, p] : fig.pca) {
      const std::string stem = "factor3_pca_run" + std::to_string(key.first) + "_" + key.second;
      plot(stem, grid(static_cast<int64_t>(p.size())), pca_figure(fig, key.first, key.second, p, o.first_tokens));
    }
    if (fig.nll) {
      std::string body = "set key top right\nset grid\nset xlabel \"position\"\nset ylabel \"NLL (EMA)\"\n" +
                         trained_marks(fig) + "set title " + gnuplot_quote("NLL against position, EMA gamma " + csv_cell(o.ema_gamma)) + "\nplot ";
      std::string parts;
      for (size_t ri = 0; ri < fig.labels.size(); ++ri) {
        if (runs[ri].kind != RunFileKind::kTokenNll) continue;
        parts += (parts.empty() ? "" : ", \\\n     ") + std::string("\"nll.csv\" skip 1 using (($1==") +
                 std::to_string(ri) + ") ? $3 : NaN):7 with lines lw 1.5 lc " + std::to_string(ri + 1) + " title " +
                 gnuplot_quote(fig.labels[ri]);
      }
      plot("nll", {1, 1}, body + parts + "\n");
    }
  }
  return plots;
}

nlohmann::json analyze(const AnalyzeOptions& o) {
  if (o.inputs.empty()) fail("lminf analyze: no input files (give factor dumps or token_nll.h5 files)");
  if (!o.labels.empty() && o.labels.size() != o.inputs.size())
    fail("lminf analyze: ", o.labels.size(), " --label for ", o.inputs.size(), " inputs (give one per input, in order, or none)");
  if (o.out_dir.empty()) fail("lminf analyze: --out DIR is required");
  if (!(o.ema_gamma >= 0 && o.ema_gamma < 1)) fail("lminf analyze: --ema ", o.ema_gamma, " must be in [0, 1)");
  std::vector<RunFile> runs;
  for (size_t i = 0; i < o.inputs.size(); ++i) runs.push_back(open_run_file(o.inputs[i], o.labels.empty() ? "" : o.labels[i]));
  ensure_writable_dir(o.out_dir, "--out");
  if (!o.overwrite && fs::exists(o.out_dir / "summary.json"))
    fail("lminf analyze: ", (o.out_dir / "summary.json").string(),
         " exists from an earlier analysis (choose another --out, or pass --overwrite)");

  Tables t;
  Figures fig;
  nlohmann::json summary;
  summary["schema"] = "lminf.analysis";
  summary["schema_version"] = 1;
  summary["runs"] = nlohmann::json::array();
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunFile& r = runs[i];
    const int64_t ri = static_cast<int64_t>(i);
    fig.labels.push_back(r.label);
    fig.trained.push_back(r.trained_length);
    nlohmann::json js;
    js["index"] = ri;
    js["label"] = r.label;
    js["path"] = r.path.string();
    js["variant"] = r.variant;
    if (r.kind == RunFileKind::kFactors) {
      js["kind"] = "factors";
      js["complete"] = r.complete;
      js["trained_length"] = r.trained_length;
      if (!r.complete) log_warn(r.path.string(), ": a partial dump (complete = 0); analysing the sequences flushed so far");
      factor1(r, ri, o, t, fig, js);
      factor2(r, ri, o, t, fig, js);
      factor3(r, ri, o, t, fig, js);
    } else {
      js["kind"] = "token_nll";
      nll(r, ri, o, t, fig, js);
    }
    summary["runs"].push_back(js);
  }

  nlohmann::json tables = nlohmann::json::array();
  auto write_table = [&](const CsvTable& table, const std::string& name) {
    if (table.rows.empty()) return;
    write_file_atomic(o.out_dir / name, table.text());
    tables.push_back(name);
  };
  write_table(t.f1_bound, "factor1_bound.csv");
  write_table(t.f1_buckets, "factor1_buckets.csv");
  write_table(t.f2, "factor2_entropy.csv");
  write_table(t.f3_sep, "factor3_separation.csv");
  write_table(t.f3_pca, "factor3_pca.csv");
  write_table(t.nll, "nll.csv");
  summary["tables"] = tables;

  summary["plots"] = draw_plots(o, t, fig, runs, summary);
  write_file_atomic(o.out_dir / "summary.json", summary.dump(2) + "\n");
  return summary;
}

}  // namespace lminf
