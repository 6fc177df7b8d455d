// Pieces shared by the tasks that generate text (generation, qa, passkey): the tokenizer of a run,
// prompt templates, greedy generation that stops at stop strings, answer extraction (the merge and
// writing of their per-sample JSON records: experiments/outputs/json_records.h).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments/experiment_spec.h"
#include "experiments/tasks/task_base.h"
#include "framework/text/tokenizer.h"
#include "models/causal_lm.h"
#include "parallel/communicator.h"

namespace lminf {

// The tokenizer of a run: data.tokenizer when set, else the model folder (model.path).
std::unique_ptr<Tokenizer> run_tokenizer(const ExperimentSpec& spec, const ModelConfig& model);
// "" when run_tokenizer() would succeed, else why not (for Task::problems, before weights are read).
std::string run_tokenizer_problem(const ExperimentSpec& spec, const ModelConfig& model);

// The problems of a task that generates text with the run's tokenizer and journals its samples as
// <stem>.partial.jsonl, before any weight is read: the tokenizer, and a journal of another configuration.
std::vector<std::string> generation_task_problems(const ExperimentSpec& spec, const ModelConfig& model,
                                                  const YAML::Node& task_resolved, const std::string& stem);

// The base of the tasks that write one JSON record per sample (generation, qa): results.json and
// Spec::kRecords + ".jsonl" (journaled while running as <kRecords>.partial.jsonl); their problems are
// generation_task_problems' followed by the spec's own (Spec::problems(experiment)).
template <class Spec>
class TextRecordTask : public SpecTask<Spec> {
 public:
  std::vector<std::string> problems(const ExperimentSpec& spec, const ModelConfig& model) const override {
    std::vector<std::string> p = generation_task_problems(spec, model, this->resolved(), Spec::kRecords);
    for (auto& q : this->spec_.problems(spec)) p.push_back(std::move(q));
    return p;
  }
  std::vector<std::string> outputs() const override { return {"results.json", records_file()}; }
  static std::string records_file() { return std::string(Spec::kRecords) + ".jsonl"; }
};

struct TextGenerationOptions {
  int64_t max_new_tokens = 64;
  // Generation ends as soon as the decoded generated text contains one of these; the text is cut
  // before the earliest occurrence.
  std::vector<std::string> stop_strings;
  int64_t eos_id = -1;  // >= 0: generation also ends after this token (not part of the text)
};

struct TextGeneration {
  std::vector<int64_t> tokens;  // every generated token (the one that completed a stop string included)
  std::string text;             // decoded tokens (special tokens skipped), cut before the stop string
  std::string stop;             // the stop string that ended generation ("" if none)
  bool eos = false;             // generation ended at eos_id
};

// Greedy generation (models/generate.h) from `prompt`, decoding as it goes to check stop strings.
TextGeneration generate_text(CausalLM& model, const AttentionVariant& attention, const Tokenizer& tokenizer,
                             const std::vector<int64_t>& prompt, const TextGenerationOptions& opts);

// The TextGeneration of generated `tokens` (as generate_text returns it): decoded, cut at the stop
// strings. A resumed run rebuilds its journalled samples with it (experiments/outputs/record_journal.h).
TextGeneration text_generation_of(const Tokenizer& tokenizer, std::vector<int64_t> tokens,
                                  const TextGenerationOptions& opts);

// Cuts `text` before the earliest occurrence of any stop string (ties: the longer string); returns
// that string, or "" (text unchanged) when none occurs.
std::string cut_at_stop(std::string& text, const std::vector<std::string>& stop_strings);

// The first run of ASCII digits (LM-Infinite's passkey rule, regex \d+), "" when there is none.
std::string first_integer(const std::string& text);

// Fills {name} fields of a prompt template from `values`; "{{" and "}}" are literal braces. Throws,
// naming `where`, for a field missing from `values` or an unbalanced brace.
std::string fill_template(const std::string& tmpl, const std::map<std::string, std::string>& values,
                          const std::string& where);
// The field names a template uses, in order of first use (same syntax rules).
std::vector<std::string> template_fields(const std::string& tmpl, const std::string& where);

}  // namespace lminf
