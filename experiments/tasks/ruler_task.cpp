#include "experiments/tasks/ruler_task.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <map>
#include <set>

#include "analysis/report/csv_table.h"
#include "analysis/report/gnuplot.h"
#include "analysis/report/niah_heatmap.h"
#include "experiments/outputs/json_records.h"
#include "experiments/tasks/ruler_score.h"
#include "framework/core/error.h"
#include "framework/core/logging.h"
#include "framework/io/atomic_file.h"
#include "framework/text/tokenizer.h"
#include "models/generate.h"

namespace lminf {
namespace fs = std::filesystem;

namespace {

std::string tokenizer_source(const RulerSpec& s, const ExperimentSpec& es) {
  return s.tokenizer.empty() ? es.model.path : s.tokenizer;
}

bool uses_words(const RulerTaskDef& d) {
  return d.kind == RulerKind::kCwe || (d.kind == RulerKind::kNiah && (d.key_type == "words" || d.value_type == "words"));
}

}  // namespace

void RulerSpec::check(const SpecSource& src) const {
  std::vector<std::string> p;
  if (lengths.empty()) p.push_back("task.lengths: empty (list the prompt lengths, e.g. [4096, 8192])");
  if (std::set<int64_t>(lengths.begin(), lengths.end()).size() != lengths.size())
    p.push_back("task.lengths: each length may appear once");
  if (tasks.empty()) p.push_back("task.tasks: empty (name RULER tasks, e.g. [niah_single_1, vt])");
  if (std::set<std::string>(tasks.begin(), tasks.end()).size() != tasks.size())
    p.push_back("task.tasks: each task may appear once");
  if (!(fwe_alpha > 1.0)) p.push_back("task.fwe_alpha: must be > 1 (the Zipf normaliser zeta(alpha) diverges at 1)");
  if (fwe_vocab_size > 0 && fwe_vocab_size < 4)
    p.push_back("task.fwe_vocab_size: " + std::to_string(fwe_vocab_size) + " must be 0 or >= 4 (the answer is ranks 2 to 4)");
  if (cwe_freq_cw <= cwe_freq_ucw)
    p.push_back("task.cwe_freq_cw (" + std::to_string(cwe_freq_cw) + ") must be > task.cwe_freq_ucw (" +
                std::to_string(cwe_freq_ucw) + "): the common words must be the frequent ones");
  if (!p.empty()) {
    std::string msg = (src.file.empty() ? "" : src.file + ": ") + "task (ruler):";
    for (const auto& x : p) msg += "\n  - " + x;
    throw Error(msg);
  }
}

RulerOptions RulerSpec::options() const {
  RulerOptions o;
  o.bos = bos;
  o.depth_points = depth_points;
  o.vt_num_chains = vt_num_chains;
  o.vt_num_hops = vt_num_hops;
  o.vt_example_length = vt_example_length;
  o.cwe_num_cw = cwe_num_cw;
  o.cwe_freq_cw = cwe_freq_cw;
  o.cwe_freq_ucw = cwe_freq_ucw;
  o.cwe_short_below = cwe_short_below;
  o.fwe_alpha = fwe_alpha;
  o.fwe_vocab_size = fwe_vocab_size;
  return o;
}

std::vector<std::string> RulerSpec::active_tasks() const {
  std::vector<std::string> out;
  for (const auto& t : tasks) {
    const RulerTaskDef& d = ruler_task_def(t);
    if (d.kind == RulerKind::kQa && (d.dataset == "squad" ? squad : hotpotqa).empty()) continue;
    out.push_back(t);
  }
  return out;
}

std::vector<RulerSample> plan_ruler_samples(const RulerSpec& spec, int64_t seed) {
  std::vector<RulerSample> out;
  for (const auto& name : spec.active_tasks()) {
    const RulerTaskDef& d = ruler_task_def(name);
    for (int64_t L : spec.lengths)
      for (int64_t i = 0; i < spec.num_samples; ++i)
        out.push_back({&d, L, i, spec.max_new_tokens > 0 ? spec.max_new_tokens : d.tokens_to_generate,
                       ruler_sample_seed(seed, name, L, i)});
  }
  return out;
}

RulerResources load_ruler_resources(const RulerSpec& spec) {
  RulerResources r;
  bool words = false, text = false;
  for (const auto& name : spec.active_tasks()) {
    const RulerTaskDef& d = ruler_task_def(name);
    words = words || uses_words(d);
    text = text || (d.kind == RulerKind::kNiah && d.haystack == "text");
  }
  if (words) {
    if (!fs::exists(spec.words_file))
      fail("task.words_file: ", spec.words_file, " does not exist (install Debian's wamerican: scripts/setup.sh, or name a word list)");
    r.words = read_word_list(spec.words_file);
    if (r.words.size() < 100)
      fail("task.words_file: ", spec.words_file, " holds ", r.words.size(), " lowercase words of 3-12 letters (need >= 100)");
  }
  if (text) {
    if (!fs::exists(spec.haystack))
      fail("task.haystack: ", spec.haystack, " does not exist (make the GNU-manual corpus with scripts/make_corpus.sh ",
           "build/corpus, or name any text file or folder of *.txt files)");
    r.haystack_words = read_text_words(spec.haystack);
    if (r.haystack_words.empty()) fail("task.haystack: ", spec.haystack, " holds no text");
  }
  const auto& names = spec.active_tasks();
  auto active = [&](const char* t) { return std::find(names.begin(), names.end(), t) != names.end(); };
  if (active("qa_1")) r.squad = std::make_shared<QaSet>(read_squad(spec.squad));
  if (active("qa_2")) r.hotpotqa = std::make_shared<QaSet>(read_hotpotqa(spec.hotpotqa));
  return r;
}

nlohmann::json ruler_record(int64_t index, const RulerSample& s, const RulerPrompt& p, const std::string& generated,
                            const std::vector<int64_t>& generated_ids) {
  const std::string prediction = ruler_postprocess(generated);
  const double score = s.task->match_part ? string_match_part(prediction, p.references)
                                          : string_match_all(prediction, p.references);
  return {{"index", index},
          {"task", s.task->name},
          {"length", s.length},
          {"sample", s.sample},
          {"prompt_tokens", static_cast<int64_t>(p.ids.size())},
          {"tokens_to_generate", s.gen},
          {"haystack_tokens", p.haystack_tokens},
          {"needle_offsets", p.needle_offsets},
          {"needle_depths", p.needle_depths},
          {"query", p.query},
          {"references", p.references},
          {"generated", generated},
          {"generated_ids", generated_ids},
          {"prediction", prediction},
          {"score", score}};
}

std::vector<std::string> RulerTask::outputs() const {
  std::vector<std::string> o = {"results.json", "samples.jsonl"};
  if (spec_.grid) o.insert(o.end(), {"ruler.csv", "ruler_heatmap.gp", "ruler_heatmap.png", "ruler_heatmap.svg"});
  return o;
}

std::vector<std::string> RulerTask::problems(const ExperimentSpec& es, const ModelConfig& model) const {
  std::vector<std::string> p;
  if (es.dump.enabled()) p.push_back("dump: task ruler records no factor dumps (remove the dump section)");
  const std::string journal = record_journal_problem(es, resolved(), {"flush_every"}, "samples");
  if (!journal.empty()) p.push_back(journal);
  const std::string key = spec_.tokenizer.empty() ? "model.path" : "task.tokenizer";
  std::unique_ptr<Tokenizer> tok;
  try {
    tok = load_tokenizer(tokenizer_source(spec_, es));
    check_tokenizer_fits(*tok, model, key);
  } catch (const Error& e) {
    p.push_back(key + ": " + e.what());
    return p;
  }
  try {
    const RulerResources res = load_ruler_resources(spec_);
    const RulerPromptBuilder builder(*tok, spec_.options(), res);
    std::map<std::pair<std::string, int64_t>, int64_t> need;  // (task, length) -> the longest shortest length
    for (const auto& s : plan_ruler_samples(spec_, es.seed)) {
      auto& n = need[{s.task->name, s.length}];
      n = std::max(n, builder.shortest_length(*s.task, s.length, s.gen, s.sample, s.seed));
    }
    for (const auto& [cell, n] : need)
      if (cell.second < n)
        p.push_back("task.lengths: " + std::to_string(cell.second) + " tokens cannot hold task " + cell.first +
                    "'s template, needles and tokens to generate (" + std::to_string(n) + " tokens with " +
                    tok->description() + "); use lengths >= " + std::to_string(n) +
                    ", leave it out of task.tasks, or lower task.max_new_tokens");
  } catch (const Error& e) {
    p.push_back(e.what());
  }
  return p;
}

namespace {

// ruler.csv (each task's score and the average, by length) and, with gnuplot, the heat map; returns
// the figures drawn (into summary["plots_skipped"] why there are none).
nlohmann::json write_grid(const RunContext& ctx, const RulerSpec& spec, const std::vector<std::string>& tasks,
                          nlohmann::json& summary) {
  CsvTable t({"length_index", "task_index", "length", "task", "num_samples", "score", "fraction"});
  std::vector<std::string> rows = tasks;
  rows.push_back("average");
  for (size_t ti = 0; ti < rows.size(); ++ti)
    for (size_t li = 0; li < spec.lengths.size(); ++li) {
      double score = std::numeric_limits<double>::quiet_NaN();
      int64_t n = 0;
      for (const auto& e : summary["scores"])
        if (e["task"] == rows[ti] && e["length"] == spec.lengths[li]) score = e["score"], n = e["num_samples"];
      for (const auto& e : summary["averages"])
        if (ti + 1 == rows.size() && e["length"] == spec.lengths[li]) score = e["average"];
      t.add({csv_cell(static_cast<int64_t>(li)), csv_cell(static_cast<int64_t>(ti)), csv_cell(spec.lengths[li]), rows[ti],
             csv_cell(n), csv_cell(score), csv_cell(score / 100.0)});
    }
  write_file_atomic(ctx.final_dir / "ruler.csv", t.text());
  nlohmann::json plots = nlohmann::json::array();
  const std::string gp = find_gnuplot();
  if (gp.empty()) {
    summary["plots_skipped"] = "gnuplot is not installed (apt-get install gnuplot-nox); ruler.csv was written";
    log_warn("ruler: gnuplot not found on PATH; wrote ruler.csv, skipped the heat map");
    return plots;
  }
  NiahHeatmap h;
  h.csv = "ruler.csv";
  h.source = "task ruler";
  h.value_title = "score / 100";
  h.y_title = "task";
  for (int64_t L : spec.lengths) h.x_labels.push_back(std::to_string(L));
  h.y_labels = rows;
  const auto& eff = summary["effective_length"];
  char title[200];
  std::snprintf(title, sizeof title, "RULER: %s (%s), effective length %lld at threshold %.4g", ctx.spec.name.c_str(),
                ctx.attention.name().c_str(), static_cast<long long>(eff["effective_length"].get<int64_t>()),
                eff["threshold"].get<double>());
  h.title = title;
  try {  // the samples are worth more than the figure: a gnuplot failure only skips it
    for (const auto& f : plot_niah_heatmap(gp, ctx.final_dir, h, "ruler_heatmap")) plots.push_back(f);
  } catch (const Error& e) {
    summary["plots_skipped"] = e.what();
    log_warn("ruler: the heat map was not drawn: ", e.what());
  }
  return plots;
}

// The score table on stdout: a row per task, a column per length; the average and the effective length.
void print_table(const nlohmann::json& summary, const std::vector<std::string>& tasks, const std::vector<int64_t>& lengths) {
  std::printf("%-16s", "task");
  for (int64_t L : lengths) std::printf(" %8lld", static_cast<long long>(L));
  std::printf("\n");
  auto row = [&](const std::string& name, const char* list, const char* field) {
    std::printf("%-16s", name.c_str());
    for (int64_t L : lengths) {
      std::string cell = "-";
      for (const auto& e : summary[list])
        if (e["length"] == L && (!e.contains("task") || e["task"] == name)) {
          char b[32];
          std::snprintf(b, sizeof b, "%.1f", e[field].get<double>());
          cell = b;
        }
      std::printf(" %8s", cell.c_str());
    }
    std::printf("\n");
  };
  for (const auto& t : tasks) row(t, "scores", "score");
  row("average", "averages", "average");
  const auto& eff = summary["effective_length"];
  std::printf("effective length %lld (threshold %.4g)\n", static_cast<long long>(eff["effective_length"].get<int64_t>()),
              eff["threshold"].get<double>());
  std::fflush(stdout);
}

}  // namespace

void RulerTask::run(RunContext& ctx) {
  const ExperimentSpec& es = ctx.spec;
  auto tok = load_tokenizer(tokenizer_source(spec_, es));
  const RulerResources res = load_ruler_resources(spec_);
  const RulerPromptBuilder builder(*tok, spec_.options(), res);
  const std::vector<std::string> tasks = spec_.active_tasks();
  nlohmann::json skipped = nlohmann::json::array();
  for (const auto& t : spec_.tasks)
    if (std::find(tasks.begin(), tasks.end(), t) == tasks.end()) {
      const std::string key = ruler_task_def(t).dataset == "squad" ? "task.squad" : "task.hotpotqa";
      skipped.push_back({{"task", t}, {"reason", key + " names no data file"}});
      log_info("ruler: skipping ", t, " (", key, " names no ", ruler_task_def(t).dataset, " JSON file)");
    }
  const std::vector<RulerSample> plan = plan_ruler_samples(spec_, es.seed);
  const auto n = static_cast<int64_t>(plan.size());
  DataParallelShare share(ctx, n);
  log_info("ruler: ", n, " samples (", tasks.size(), " tasks x ", spec_.lengths.size(), " lengths x ", spec_.num_samples,
           "), variant ", ctx.attention.name(), ", tokenizer ", tok->description(), share.log_suffix());

  GenerateOptions go;
  if (tok->eos_id() >= 0) go.stop_tokens = {tok->eos_id()};
  RecordLoop loop(ctx, share, resolved(), {"samples", spec_.flush_every, "ruler", "samples"});
  nlohmann::json mine = nlohmann::json::array();
  int64_t fed_tokens = 0;
  for (int64_t i : loop.items()) {
    if (const nlohmann::json* done = loop.journalled(i)) {
      mine.push_back(*done);
      continue;
    }
    const RulerSample& s = plan[static_cast<size_t>(i)];
    const RulerPrompt prompt = builder.build(*s.task, s.length, s.gen, s.sample, s.seed);
    go.max_new_tokens = s.gen;
    const std::vector<int64_t> ids = generate(ctx.model, ctx.attention, prompt.ids, go);
    fed_tokens += static_cast<int64_t>(prompt.ids.size());
    nlohmann::json record = ruler_record(i, s, prompt, tok->decode(ids, true), ids);
    loop.record(record);
    mine.push_back(std::move(record));
  }
  const nlohmann::json all = loop.merge(mine);
  if (!ctx.writer) return loop.finish();

  const auto records = sorted_by(all, "index");
  write_jsonl_atomic(ctx.final_dir / "samples.jsonl", nlohmann::json(records));
  nlohmann::json summary = summarize_ruler(nlohmann::json(records), tasks, spec_.lengths, spec_.threshold);
  summary["task"] = "ruler";
  summary["tasks"] = tasks;
  summary["lengths"] = spec_.lengths;
  summary["skipped"] = skipped;
  summary["samples"] = n;
  summary["tokenizer"] = tok->description();
  const double elapsed = loop.elapsed_s();
  summary["prompt_tokens_per_s"] = elapsed > 0 ? static_cast<double>(fed_tokens) / elapsed : 0.0;
  summary["plots"] = spec_.grid ? write_grid(ctx, spec_, tasks, summary) : nlohmann::json::array();
  loop.finish(ctx, summary);
  print_table(summary, tasks, spec_.lengths);
  log_info("ruler: effective length ", summary["effective_length"]["effective_length"].get<int64_t>(), " over ", n,
           " samples in ", elapsed, " s; wrote ", (ctx.out_dir / "results.json").string());
}

}  // namespace lminf
