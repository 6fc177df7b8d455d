#include "experiments/tasks/passkey_task.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <set>

#include "analysis/report/csv_table.h"
#include "analysis/report/gnuplot.h"
#include "analysis/report/niah_heatmap.h"
#include "experiments/tasks/sample_rng.h"
#include "framework/io/atomic_file.h"
#include "framework/core/error.h"
#include "framework/core/logging.h"
#include "framework/text/tokenizer.h"
#include "models/generate.h"

namespace lminf {
namespace fs = std::filesystem;

namespace {

uint64_t sample_hash(int64_t seed, int64_t length, int64_t depth_index, int64_t sample, uint64_t stream) {
  uint64_t h = splitmix64(static_cast<uint64_t>(seed) ^ 0x70A55E7ULL);
  for (uint64_t v : {static_cast<uint64_t>(length), static_cast<uint64_t>(depth_index), static_cast<uint64_t>(sample),
                     stream})
    h = splitmix64(h ^ v);
  return h;
}

std::string tokenizer_source(const PasskeySpec& s, const ExperimentSpec& es) {
  return s.tokenizer.empty() ? es.model.path : s.tokenizer;
}

double ratio(int64_t a, int64_t b) {
  return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : std::numeric_limits<double>::quiet_NaN();
}

nlohmann::json tally(int64_t samples, int64_t correct) {
  return {{"samples", samples}, {"correct", correct}, {"accuracy", ratio(correct, samples)}};
}

std::string depth_label(const PasskeySpec& spec, int64_t d) {
  char buf[48];
  if (spec.depths.empty()) {
    const double w = 1.0 / static_cast<double>(spec.depth_bins);
    std::snprintf(buf, sizeof buf, "%.3g-%.3g", w * static_cast<double>(d), w * static_cast<double>(d + 1));
  } else {
    std::snprintf(buf, sizeof buf, "%.3g", spec.depths[static_cast<size_t>(d)]);
  }
  return buf;
}

}  // namespace

std::vector<PasskeySample> plan_passkey_samples(const PasskeySpec& spec, int64_t seed) {
  std::vector<PasskeySample> out;
  const uint64_t range = static_cast<uint64_t>(spec.key_max - spec.key_min) + 1;
  const bool random_depth = spec.depths.empty();
  const int64_t n_depth = random_depth ? 1 : static_cast<int64_t>(spec.depths.size());
  for (int64_t length : spec.lengths) {
    for (int64_t d = 0; d < n_depth; ++d) {
      for (int64_t i = 0; i < spec.samples; ++i) {
        PasskeySample s;
        s.length = length;
        s.depth_index = random_depth ? -1 : d;
        s.key = spec.key_min + static_cast<int64_t>(sample_hash(seed, length, s.depth_index, i, 1) % range);
        // 53 random bits -> [0, 1)
        s.depth = random_depth ? static_cast<double>(sample_hash(seed, length, -1, i, 2) >> 11) * 0x1.0p-53
                               : spec.depths[static_cast<size_t>(d)];
        out.push_back(s);
      }
    }
  }
  return out;
}

std::vector<double> passkey_depth_axis(const PasskeySpec& spec) {
  if (!spec.depths.empty()) return spec.depths;
  std::vector<double> axis;
  for (int64_t b = 0; b < spec.depth_bins; ++b)
    axis.push_back((static_cast<double>(b) + 0.5) / static_cast<double>(spec.depth_bins));
  return axis;
}

int64_t passkey_depth_cell(const PasskeySpec& spec, const PasskeySample& s) {
  if (s.depth_index >= 0) return s.depth_index;
  const auto bin = static_cast<int64_t>(std::floor(s.depth * static_cast<double>(spec.depth_bins)));
  return std::clamp<int64_t>(bin, 0, spec.depth_bins - 1);
}

nlohmann::json summarize_passkey(const PasskeySpec& spec, const std::vector<PasskeyOutcome>& outcomes) {
  const std::vector<double> axis = passkey_depth_axis(spec);
  const size_t nl = spec.lengths.size(), nd = axis.size();
  std::vector<int64_t> cell_n(nl * nd, 0), cell_c(nl * nd, 0);
  int64_t n = 0, c = 0;
  for (const auto& o : outcomes) {
    const auto li = static_cast<size_t>(
        std::find(spec.lengths.begin(), spec.lengths.end(), o.sample.length) - spec.lengths.begin());
    if (li == nl) fail("passkey: a sample of length ", o.sample.length, " is not in task.lengths (internal error)");
    const size_t k = li * nd + static_cast<size_t>(passkey_depth_cell(spec, o.sample));
    ++cell_n[k];
    ++n;
    if (o.correct) {
      ++cell_c[k];
      ++c;
    }
  }
  nlohmann::json j = tally(n, c);
  nlohmann::json by_length = nlohmann::json::array(), by_depth = nlohmann::json::array(),
                 cells = nlohmann::json::array();
  for (size_t li = 0; li < nl; ++li) {
    int64_t sn = 0, sc = 0;
    for (size_t d = 0; d < nd; ++d) {
      sn += cell_n[li * nd + d];
      sc += cell_c[li * nd + d];
    }
    nlohmann::json e = tally(sn, sc);
    e["length"] = spec.lengths[li];
    by_length.push_back(e);
  }
  for (size_t d = 0; d < nd; ++d) {
    int64_t sn = 0, sc = 0;
    for (size_t li = 0; li < nl; ++li) {
      sn += cell_n[li * nd + d];
      sc += cell_c[li * nd + d];
      nlohmann::json e = tally(cell_n[li * nd + d], cell_c[li * nd + d]);
      e["length"] = spec.lengths[li];
      e["depth"] = axis[d];
      cells.push_back(e);
    }
    nlohmann::json e = tally(sn, sc);
    e["depth"] = axis[d];
    if (spec.depths.empty()) {
      e["depth_lo"] = static_cast<double>(d) / static_cast<double>(nd);
      e["depth_hi"] = static_cast<double>(d + 1) / static_cast<double>(nd);
    }
    by_depth.push_back(e);
  }
  j["by_length"] = by_length;
  j["by_depth"] = by_depth;
  j["cells"] = cells;  // lengths x depths, depth outermost (the order of niah.csv)
  return j;
}

std::vector<int64_t> passkey_share(int64_t total, int64_t n, int64_t rank) {
  return data_parallel_items(total, n, rank);
}

at::Tensor pack_generated(const std::vector<std::vector<int64_t>>& mine, int64_t total, int64_t n, int64_t max_new) {
  const int64_t rows = (total + n - 1) / n;
  at::Tensor t = at::full({rows, max_new + 1}, -1, at::kLong);
  auto a = t.accessor<int64_t, 2>();
  for (size_t r = 0; r < mine.size(); ++r) {
    const auto& g = mine[r];
    if (static_cast<int64_t>(g.size()) > max_new) fail("passkey: more generated tokens than max_new_tokens (internal error)");
    a[static_cast<int64_t>(r)][0] = static_cast<int64_t>(g.size());
    for (size_t k = 0; k < g.size(); ++k) a[static_cast<int64_t>(r)][static_cast<int64_t>(k) + 1] = g[k];
  }
  return t;
}

std::vector<std::vector<int64_t>> unpack_generated(const at::Tensor& all, int64_t total, int64_t n) {
  const int64_t rows = (total + n - 1) / n;
  if (all.size(0) != rows * n) fail("passkey: gathered ", all.size(0), " rows, expected ", rows * n, " (internal error)");
  auto a = all.accessor<int64_t, 2>();
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(total));
  for (int64_t i = 0; i < total; ++i) {
    const int64_t r = (i % n) * rows + i / n;  // sample i is row i / n of replica i % n
    const int64_t count = a[r][0];
    if (count < 0) fail("passkey: sample ", i, " was generated by no replica (internal error)");
    for (int64_t k = 0; k < count; ++k) out[static_cast<size_t>(i)].push_back(a[r][k + 1]);
  }
  return out;
}

void PasskeySpec::check(const SpecSource& src) const {
  std::vector<std::string> p;
  if (key_min > key_max)
    p.push_back("task.key_min (" + std::to_string(key_min) + ") must be <= task.key_max (" +
                std::to_string(key_max) + ")");
  if (lengths.empty()) p.push_back("task.lengths: empty (list the prompt lengths, e.g. [1024, 2048])");
  if (std::set<int64_t>(lengths.begin(), lengths.end()).size() != lengths.size())
    p.push_back("task.lengths: each length may appear once");
  if (std::set<double>(depths.begin(), depths.end()).size() != depths.size())
    p.push_back("task.depths: each depth may appear once");
  if (needle.find("{key}") == std::string::npos)
    p.push_back("task.needle: \"" + needle + "\" has no {key} slot (write {key} where the pass key goes)");
  if (filler.empty()) p.push_back("task.filler: empty (the haystack is made of it)");
  if (!p.empty()) {
    std::string msg = (src.file.empty() ? "" : src.file + ": ") + "task (passkey):";
    for (const auto& x : p) msg += "\n  - " + x;
    throw Error(msg);
  }
}

std::vector<std::string> PasskeyTask::outputs() const {
  std::vector<std::string> o = {"results.json", "samples.jsonl"};
  if (spec_.grid) o.insert(o.end(), {"niah.csv", "niah_heatmap.gp", "niah_heatmap.png", "niah_heatmap.svg"});
  return o;
}

std::vector<std::string> PasskeyTask::problems(const ExperimentSpec& es, const ModelConfig& model) const {
  std::vector<std::string> p;
  if (es.dump.enabled()) p.push_back("dump: task passkey records no factor dumps (remove the dump section)");
  const std::string journal = record_journal_problem(es, resolved(), {"flush_every"}, "samples");
  if (!journal.empty()) p.push_back(journal);
  const std::string tp = tokenizer_source(spec_, es);
  const std::string key = spec_.tokenizer.empty() ? "model.path" : "task.tokenizer";
  std::unique_ptr<Tokenizer> tok;
  try {
    tok = load_tokenizer(tp);
    check_tokenizer_fits(*tok, model, key);
  } catch (const Error& e) {
    p.push_back(key + ": " + e.what());
    return p;
  }
  try {
    PasskeyPromptBuilder builder(*tok, {spec_.task_line, spec_.filler, spec_.needle, spec_.question}, spec_.bos);
    // Every sample's prompt must hold its fixed parts (the needle's length depends on the key).
    std::map<int64_t, int64_t> need;  // length -> most fixed tokens of its samples
    for (const auto& s : plan_passkey_samples(spec_, es.seed))
      need[s.length] = std::max(need[s.length], builder.fixed_tokens(s.key));
    for (const auto& [length, fixed] : need)
      if (length < fixed)
        p.push_back("task.lengths: " + std::to_string(length) + " tokens cannot hold the task line, needle and question (" +
                    std::to_string(fixed) + " tokens with " + tok->description() + "); use lengths >= " +
                    std::to_string(fixed) + " or shorter template strings");
  } catch (const Error& e) {
    p.push_back(std::string("task: ") + e.what());
  }
  return p;
}

namespace {

// samples.jsonl (one line per sample, in file order) from every sample's generated ids; returns the outcomes.
std::vector<PasskeyOutcome> write_samples(const fs::path& path, const PasskeySpec& spec,
                                          const std::vector<PasskeySample>& plan, const PasskeyPromptBuilder& builder,
                                          const Tokenizer& tok, const std::vector<std::vector<int64_t>>& generated) {
  std::vector<PasskeyOutcome> outcomes;
  std::string lines;
  for (size_t i = 0; i < plan.size(); ++i) {
    const PasskeySample& s = plan[i];
    const PasskeyPrompt prompt = builder.build(s.length, s.depth, s.key);
    const auto& g = generated[i];
    const std::string text = tok.decode(g, true);
    const auto answer = passkey_answer(text);
    const bool correct = passkey_correct(text, s.key);
    outcomes.push_back({s, correct});
    nlohmann::ordered_json line = {{"index", static_cast<int64_t>(i)},
                           {"length", s.length},
                           {"depth", s.depth},
                           {"depth_cell", passkey_depth_axis(spec)[static_cast<size_t>(passkey_depth_cell(spec, s))]},
                           {"needle_start", prompt.needle_start},
                           {"needle_depth", prompt.depth},
                           {"needle_distance", prompt.needle_distance()},
                           {"key", s.key},
                           {"generated", text},
                           {"generated_ids", g},
                           {"answer", answer ? nlohmann::ordered_json(*answer) : nlohmann::ordered_json(nullptr)},
                           {"correct", correct}};
    lines += line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  }
  write_file_atomic(path, lines);
  return outcomes;
}

// The grid: niah.csv and, with gnuplot, the heat map; the figures drawn (into summary["plots_skipped"]
// why there are none).
nlohmann::json write_grid(const RunContext& ctx, const PasskeySpec& spec, nlohmann::json& summary, int64_t n) {
  nlohmann::json plots = nlohmann::json::array();
  CsvTable t({"length_index", "depth_index", "length", "depth", "samples", "correct", "accuracy"});
  const std::vector<double> axis = passkey_depth_axis(spec);
  const size_t nl = spec.lengths.size();
  for (size_t k = 0; k < summary["cells"].size(); ++k) {
    const auto& c = summary["cells"][k];
    const int64_t samples = c["samples"].get<int64_t>(), correct = c["correct"].get<int64_t>();
    t.add({csv_cell(static_cast<int64_t>(k % nl)), csv_cell(static_cast<int64_t>(k / nl)),
           csv_cell(c["length"].get<int64_t>()), csv_cell(c["depth"].get<double>()), csv_cell(samples),
           csv_cell(correct), csv_cell(ratio(correct, samples))});
  }
  write_file_atomic(ctx.final_dir / "niah.csv", t.text());
  const std::string gp = find_gnuplot();
  if (gp.empty()) {
    summary["plots_skipped"] = "gnuplot is not installed (apt-get install gnuplot-nox); niah.csv was written";
    log_warn("passkey: gnuplot not found on PATH; wrote niah.csv, skipped the heat map");
    return plots;
  }
  NiahHeatmap h;
  h.csv = "niah.csv";
  for (int64_t L : spec.lengths) h.x_labels.push_back(std::to_string(L));
  for (size_t d = 0; d < axis.size(); ++d) h.y_labels.push_back(depth_label(spec, static_cast<int64_t>(d)));
  char title[160];
  std::snprintf(title, sizeof title, "Passkey retrieval: %s (%s), accuracy %.3f over %lld samples",
                ctx.spec.name.c_str(), ctx.attention.name().c_str(), summary["accuracy"].get<double>(),
                static_cast<long long>(n));
  h.title = title;
  try {  // the samples are worth more than the figure: a gnuplot failure only skips it
    for (const auto& f : plot_niah_heatmap(gp, ctx.final_dir, h, "niah_heatmap")) plots.push_back(f);
  } catch (const Error& e) {
    summary["plots_skipped"] = e.what();
    log_warn("passkey: the heat map was not drawn: ", e.what());
  }
  return plots;
}

void print_accuracy_table(const nlohmann::json& summary, int64_t n) {
  std::printf("%-10s %8s %8s %9s\n", "length", "samples", "correct", "accuracy");
  for (const auto& e : summary["by_length"])
    std::printf("%-10lld %8lld %8lld %9.3f\n", static_cast<long long>(e["length"].get<int64_t>()),
                static_cast<long long>(e["samples"].get<int64_t>()), static_cast<long long>(e["correct"].get<int64_t>()),
                e["accuracy"].get<double>());
  std::printf("%-10s %8lld %8lld %9.3f\n", "all", static_cast<long long>(n),
              static_cast<long long>(summary["correct"].get<int64_t>()), summary["accuracy"].get<double>());
  std::fflush(stdout);
}

}  // namespace

void PasskeyTask::run(RunContext& ctx) {
  const ExperimentSpec& es = ctx.spec;
  auto tok = load_tokenizer(tokenizer_source(spec_, es));
  PasskeyPromptBuilder builder(*tok, {spec_.task_line, spec_.filler, spec_.needle, spec_.question}, spec_.bos);
  const std::vector<PasskeySample> plan = plan_passkey_samples(spec_, es.seed);
  const int64_t n = static_cast<int64_t>(plan.size());
  DataParallelShare share(ctx, n);
  int64_t total_tokens = 0;
  for (const auto& s : plan) total_tokens += s.length;
  const int64_t longest = *std::max_element(spec_.lengths.begin(), spec_.lengths.end());
  log_info("passkey: ", n, " samples (", spec_.lengths.size(), " lengths x ",
           spec_.depths.empty() ? std::string("random depths") : std::to_string(spec_.depths.size()) + " depths",
           "), ", total_tokens, " prompt tokens, variant ", ctx.attention.name(), ", tokenizer ", tok->description(),
           share.log_suffix());
  if (longest > ctx.model_config.max_position_embeddings)
    log_info("passkey: prompts up to ", longest, " tokens, the model was trained on ",
             ctx.model_config.max_position_embeddings);

  GenerateOptions go;
  go.max_new_tokens = spec_.max_new_tokens;
  if (tok->eos_id() >= 0) go.stop_tokens = {tok->eos_id()};
  // Each completed sample's generated ids go to the journal; a resumed run takes them from there.
  RecordLoop loop(ctx, share, resolved(), {"samples", spec_.flush_every, "passkey", "samples"});
  std::vector<std::vector<int64_t>> generated;
  for (int64_t i : loop.items()) {
    if (const nlohmann::json* done = loop.journalled(i)) {
      generated.push_back(done->at("generated_ids").get<std::vector<int64_t>>());
      continue;
    }
    const PasskeySample& s = plan[static_cast<size_t>(i)];
    generated.push_back(generate(ctx.model, ctx.attention, builder.build(s.length, s.depth, s.key).ids, go));
    loop.record({{"index", i}, {"generated_ids", generated.back()}});
  }
  loop.end();

  // Merge once: every replica's generated ids, gathered in rank order.
  const int64_t n_dp = share.replicas();
  at::Tensor part = pack_generated(generated, n, n_dp, spec_.max_new_tokens);
  const auto all = unpack_generated(n_dp > 1 ? share.comm().all_gather(part, 0) : part, n, n_dp);
  if (!ctx.writer) return loop.finish();

  nlohmann::json summary =
      summarize_passkey(spec_, write_samples(ctx.final_dir / "samples.jsonl", spec_, plan, builder, *tok, all));
  summary["task"] = "passkey";
  summary["lengths"] = spec_.lengths;
  summary["depths"] = passkey_depth_axis(spec_);
  summary["random_depths"] = spec_.depths.empty();
  summary["tokenizer"] = tok->description();
  int64_t fed_tokens = total_tokens;  // by this invocation, every replica: less those of resumed samples
  for (int64_t i = 0; i < n; ++i)
    if (loop.journal().resumed_anywhere(i)) fed_tokens -= plan[static_cast<size_t>(i)].length;
  const double elapsed = loop.elapsed_s();
  summary["prompt_tokens_per_s"] = elapsed > 0 ? static_cast<double>(fed_tokens) / elapsed : 0.0;
  nlohmann::json plots = spec_.grid ? write_grid(ctx, spec_, summary, n) : nlohmann::json::array();
  summary["plots"] = plots;
  loop.finish(ctx, summary);
  print_accuracy_table(summary, n);
  log_info("passkey: accuracy ", summary["accuracy"].get<double>(), " over ", n, " samples in ", elapsed,
           " s; wrote ", (ctx.out_dir / "results.json").string());
}

}  // namespace lminf
