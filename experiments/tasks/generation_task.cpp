#include "experiments/tasks/generation_task.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "attention/registry.h"
#include "experiments/tasks/generation_common.h"
#include "experiments/tasks/task_base.h"
#include "experiments/outputs/json_records.h"
#include "experiments/data/sequence_source.h"
#include "framework/core/error.h"
#include "framework/core/logging.h"
#include "metrics/bleu.h"
#include "metrics/rouge.h"

namespace lminf {
namespace {

using json = nlohmann::json;

// The text a metric sees: LM-Infinite's generation_metrics.py replaces an empty prediction by ".".
std::string scored_text(const std::string& s) { return s.empty() ? "." : s; }

json record_metrics(const std::string& reference, const std::string& generated) {
  const std::string g = scored_text(generated);
  const BleuResult b = sentence_bleu(tokenize_13a(g), {tokenize_13a(reference)});
  const RougeScores r = rouge(reference, g);
  return {{"bleu", b.bleu},
          {"rouge1", r.rouge1.fmeasure},
          {"rouge2", r.rouge2.fmeasure},
          {"rougeL", r.rougeL.fmeasure},
          {"rougeLsum", r.rougeLsum.fmeasure}};
}

struct WorkItem {
  int64_t document;  // index among the used documents
  int64_t depth;
};

// The documents: in data order, those with at least min_document_length tokens, at most `documents`.
struct Documents {
  std::vector<std::vector<int64_t>> docs;
  int64_t too_short = 0;
};

Documents read_documents(SequenceSource& source, const GenerationSpec& spec, const std::string& path) {
  Documents d;
  std::vector<int64_t> s;
  while (source.next(s)) {
    if (static_cast<int64_t>(s.size()) < spec.min_document_length) {
      ++d.too_short;
      continue;
    }
    d.docs.push_back(std::move(s));
    if (spec.documents > 0 && static_cast<int64_t>(d.docs.size()) >= spec.documents) break;
  }
  if (d.docs.empty())
    fail(path, ": no document has task.min_document_length = ", spec.min_document_length, " tokens (", d.too_short,
         " shorter ones read)");
  return d;
}

// Work items: (document, depth) where the document holds the prompt and a full reference; `skipped`:
// depth -> documents too short for it.
std::vector<WorkItem> plan_items(const Documents& d, const GenerationSpec& spec, std::map<int64_t, int64_t>& skipped) {
  std::vector<WorkItem> items;
  for (int64_t depth : spec.depths) {
    skipped[depth] = 0;
    for (size_t i = 0; i < d.docs.size(); ++i) {
      if (static_cast<int64_t>(d.docs[i].size()) >= depth + spec.max_new_tokens)
        items.push_back({static_cast<int64_t>(i), depth});
      else
        ++skipped[depth];
    }
  }
  return items;
}

// What one work item's generations share: the model, the tokenizer and the generation options.
struct ItemGenerator {
  RunContext& ctx;
  const Tokenizer& tokenizer;
  const TextGenerationOptions& gen;

  // The record of item i for `variant` from prompt tokens [start, depth) of `doc`: generated now, or
  // rebuilt from the journalled ids; its generated ids go to `entry` (the journal's line).
  json record(int64_t i, const WorkItem& w, const std::vector<int64_t>& doc, const std::string& reference,
              const std::string& variant, const AttentionVariant& attention, int64_t start, const json* journalled,
              json& entry) const {
    const std::vector<int64_t> prompt(doc.begin() + start, doc.begin() + w.depth);
    const TextGeneration g =
        journalled ? text_generation_of(tokenizer, journalled->at(variant).get<std::vector<int64_t>>(), gen)
                   : generate_text(ctx.model, attention, tokenizer, prompt, gen);
    entry[variant] = g.tokens;
    json rec = {{"item", i},
                {"document", w.document},
                {"depth", w.depth},
                {"variant", variant},
                {"attention", attention.name()},
                {"prompt_start", start},
                {"prompt_tokens", static_cast<int64_t>(prompt.size())},
                {"reference", reference},
                {"generated", g.text},
                {"generated_tokens", static_cast<int64_t>(g.tokens.size())},
                {"generated_ids", g.tokens},
                {"eos", g.eos}};
    rec["metrics"] = record_metrics(reference, g.text);
    return rec;
  }
};

// results.json's depths: per depth, the skipped documents and each variant's scores.
json score_depths(const GenerationSpec& spec, const std::vector<json>& sorted, const std::vector<std::string>& variants,
                  std::map<int64_t, int64_t>& skipped);

void print_depth_table(const json& by_depth, const std::vector<std::string>& variants) {
  std::printf("%-8s %-10s %6s %8s %8s %8s %8s\n", "depth", "variant", "count", "BLEU", "ROUGE-1", "ROUGE-2", "ROUGE-L");
  for (const auto& e : by_depth)
    for (const auto& v : variants) {
      const json& s = e[v];
      if (s["count"].get<int64_t>() == 0) {
        std::printf("%-8lld %-10s %6d %8s %8s %8s %8s\n", static_cast<long long>(e["depth"].get<int64_t>()), v.c_str(), 0,
                    "-", "-", "-", "-");
        continue;
      }
      std::printf("%-8lld %-10s %6lld %8.4f %8.4f %8.4f %8.4f\n", static_cast<long long>(e["depth"].get<int64_t>()),
                  v.c_str(), static_cast<long long>(s["count"].get<int64_t>()), s["bleu"].get<double>(),
                  s["rouge1"].get<double>(), s["rouge2"].get<double>(), s["rougeL"].get<double>());
    }
  std::fflush(stdout);
}

}  // namespace

void GenerationSpec::check(const SpecSource& src) const {
  if (depths.empty()) fail(src.file, ": task.depths is empty (give prompt lengths in tokens, e.g. [4096, 8192])");
  for (int64_t d : depths)
    if (d < 1) fail(src.file, ": task.depths: ", d, " is not a prompt length (each depth must be >= 1 token)");
}

std::vector<std::string> GenerationSpec::problems(const ExperimentSpec& spec) const {
  std::vector<std::string> p;
  if (truncation_baseline && baseline_length == 0 && !spec.attention.local_window())
    p.push_back("task.baseline_length: 0 means attention.local_branch, which variant " + spec.attention.variant +
                " does not have (set task.baseline_length)");
  return p;
}

json score_generations(const std::vector<const json*>& records) {
  std::vector<Tokens> hyps;
  std::vector<std::vector<Tokens>> refs;
  double bleu = 0, r1 = 0, r2 = 0, rl = 0, rls = 0;
  for (const json* r : records) {
    const std::string ref = (*r)["reference"].get<std::string>();
    hyps.push_back(tokenize_13a(scored_text((*r)["generated"].get<std::string>())));
    refs.push_back({tokenize_13a(ref)});
    const json& m = (*r)["metrics"];
    bleu += m["bleu"].get<double>();
    r1 += m["rouge1"].get<double>();
    r2 += m["rouge2"].get<double>();
    rl += m["rougeL"].get<double>();
    rls += m["rougeLsum"].get<double>();
  }
  const double n = static_cast<double>(records.size());
  json out;
  out["count"] = records.size();
  if (records.empty()) return out;
  const BleuResult c = corpus_bleu(hyps, refs);
  out["bleu"] = c.bleu;
  out["bleu_precisions"] = c.precisions;
  out["brevity_penalty"] = c.brevity_penalty;
  out["length_ratio"] = c.length_ratio;
  out["translation_length"] = c.translation_length;
  out["reference_length"] = c.reference_length;
  out["mean_sentence_bleu"] = bleu / n;
  out["rouge1"] = r1 / n;
  out["rouge2"] = r2 / n;
  out["rougeL"] = rl / n;
  out["rougeLsum"] = rls / n;
  return out;
}

namespace {

json score_depths(const GenerationSpec& spec, const std::vector<json>& sorted, const std::vector<std::string>& variants,
                  std::map<int64_t, int64_t>& skipped) {
  json by_depth = json::array();
  for (int64_t d : spec.depths) {
    json e = {{"depth", d}, {"skipped_short", skipped[d]}};
    for (const auto& v : variants) {
      std::vector<const json*> recs;
      for (const auto& r : sorted)
        if (r["depth"].get<int64_t>() == d && r["variant"].get<std::string>() == v) recs.push_back(&r);
      e[v] = score_generations(recs);
    }
    by_depth.push_back(e);
  }
  return by_depth;
}

}  // namespace

void GenerationTask::run(RunContext& ctx) {
  const ExperimentSpec& es = ctx.spec;
  auto tokenizer = run_tokenizer(es, ctx.model_config);
  auto source = open_sequence_source(es.data, ctx.model_config);
  const Documents d = read_documents(*source, spec_, es.data.path);
  std::map<int64_t, int64_t> skipped;
  const std::vector<WorkItem> items = plan_items(d, spec_, skipped);
  const int64_t L = spec_.baseline_length > 0 ? spec_.baseline_length : es.attention.local_window().value_or(0);
  std::vector<std::string> variants = {"full"};
  std::unique_ptr<AttentionVariant> vanilla;
  if (spec_.truncation_baseline) {
    vanilla = make_attention(AttentionSpec{});  // the default spec is vanilla
    variants.push_back("truncated");
  }
  DataParallelShare share(ctx, static_cast<int64_t>(items.size()));
  log_info("generation: ", d.docs.size(), " documents, ", items.size(), " (document, depth) prompts, ",
           spec_.max_new_tokens, " new tokens each, variant ", ctx.attention.name(),
           spec_.truncation_baseline ? ", truncation baseline (vanilla, last " + std::to_string(L) + " tokens)" : std::string(),
           share.log_suffix());

  TextGenerationOptions gen;
  gen.max_new_tokens = spec_.max_new_tokens;
  gen.eos_id = spec_.stop_at_eos ? tokenizer->eos_id() : -1;
  const ItemGenerator generator{ctx, *tokenizer, gen};
  // Each completed work item's generated ids go to the journal; a resumed run rebuilds its records.
  RecordLoop loop(ctx, share, resolved(), {GenerationSpec::kRecords, spec_.flush_every, "generation", "prompts"});
  json mine = json::array();
  for (int64_t i : loop.items()) {
    const WorkItem& w = items[static_cast<size_t>(i)];
    const auto& doc = d.docs[static_cast<size_t>(w.document)];
    const std::vector<int64_t> ref_ids(doc.begin() + w.depth, doc.begin() + w.depth + spec_.max_new_tokens);
    const std::string reference = tokenizer->decode(ref_ids, true);
    const json* journalled = loop.journalled(i);
    json entry = {{"index", i}};
    mine.push_back(generator.record(i, w, doc, reference, "full", ctx.attention, 0, journalled, entry));
    if (vanilla)
      mine.push_back(generator.record(i, w, doc, reference, "truncated", *vanilla, std::max<int64_t>(0, w.depth - L),
                                      journalled, entry));
    if (!journalled) loop.record(std::move(entry));
  }

  // Merge once: every replica's records, back in work-item order; rank 0 writes.
  const json all = loop.merge(mine);
  if (!ctx.writer) return loop.finish();
  std::vector<json> sorted = sorted_by(all, "item");
  for (auto& r : sorted) r.erase("item");
  json results;
  results["task"] = "generation";
  results["data"] = source->report();
  results["documents"] = d.docs.size();
  results["documents_below_min_length"] = d.too_short;
  results["max_new_tokens"] = spec_.max_new_tokens;
  results["depths"] = score_depths(spec_, sorted, variants, skipped);
  write_jsonl_atomic(ctx.final_dir / records_file(), json(sorted));
  loop.finish(ctx, results);
  print_depth_table(results["depths"], variants);
  log_info("generation: ", sorted.size(), " generations; wrote ", (ctx.out_dir / "results.json").string(), " and ", records_file());
}

}  // namespace lminf
