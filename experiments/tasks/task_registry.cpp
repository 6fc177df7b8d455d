#include <yaml-cpp/yaml.h>

#include "experiments/tasks/attention_dump_task.h"
#include "experiments/tasks/generation_task.h"
#include "experiments/tasks/passkey_task.h"
#include "experiments/tasks/qa_task.h"
#include "experiments/tasks/perplexity_task.h"
#include "experiments/tasks/pretrain_task.h"
#include "experiments/tasks/streaming_perplexity_task.h"
#include "experiments/task.h"
#include "framework/core/error.h"

namespace lminf {

void Task::run_producer(ProducerContext&) {
  fail("task ", name(), " evaluates a model and cannot run without one (internal error: needs_model() is true)");
}

// The one list of tasks. Add a task here and in docs/yaml.md.
const std::vector<TaskInfo>& task_registry() {
  static const std::vector<TaskInfo> tasks = {
      {"perplexity", "per-token NLL of each sequence; mean NLL, perplexity, NLL by position bucket",
       [] { return std::make_unique<PerplexityTask>(); }, [] { return describe_spec<PerplexitySpec>("task"); }},
      {"attention_dump", "records the dump: section's factors (attention logits, entropy, features) to HDF5",
       [] { return std::make_unique<AttentionDumpTask>(); }, [] { return describe_spec<AttentionDumpSpec>("task"); }},
      {"pretrain", "train a Llama-architecture model from scratch; writes a Hugging Face model folder",
       [] { return std::make_unique<PretrainTask>(); }, [] { return describe_spec<PretrainSpec>("task"); }},
      {"streaming_perplexity", "one shuffled stream of the documents through a bounded KV cache; per-token NLL, resumable",
       [] { return std::make_unique<StreamingPerplexityTask>(); },
       [] { return describe_spec<StreamingPerplexitySpec>("task"); }},
      {"generation", "greedy continuations at fixed depths scored against the true continuation (BLEU-4, ROUGE-1/2/L)",
       [] { return std::make_unique<GenerationTask>(); }, [] { return describe_spec<GenerationSpec>("task"); }},
      {"qa", "question answering over long documents from JSONL: prompt template, truncation, stop strings, SQuAD F1/EM",
       [] { return std::make_unique<QaTask>(); }, [] { return describe_spec<QaSpec>("task"); }},
      {"passkey", "passkey retrieval and a needle-in-a-haystack grid: accuracy by prompt length and needle depth",
       [] { return std::make_unique<PasskeyTask>(); }, [] { return describe_spec<PasskeySpec>("task"); }},
  };
  return tasks;
}

std::unique_ptr<Task> make_task(const std::string& type, const std::string& where) {
  std::vector<std::string> names;
  for (const auto& t : task_registry()) {
    if (t.name == type) return t.make();
    names.push_back(t.name);
  }
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  const std::string near = closest_match(type, names);
  fail(where, "task.type: \"", type, "\" is not a task", near.empty() ? "" : " (did you mean \"" + near + "\"?)",
       "; available: ", list);
}

}  // namespace lminf
