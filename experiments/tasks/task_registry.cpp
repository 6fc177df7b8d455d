// The task registry: the one explicit list of tasks (experiments/task.h's TaskInfo), and make_task.
#include <yaml-cpp/yaml.h>

#include "experiments/tasks/attention_dump_task.h"
#include "experiments/tasks/generation_task.h"
#include "experiments/tasks/passkey_task.h"
#include "experiments/tasks/qa_task.h"
#include "experiments/tasks/ruler_task.h"
#include "experiments/tasks/perplexity_task.h"
#include "experiments/tasks/pretrain_task.h"
#include "experiments/tasks/streaming_perplexity_task.h"
#include "experiments/task.h"
#include "framework/core/error.h"
#include "framework/core/format.h"

namespace lminf {

void Task::run_producer(ProducerContext&) {
  fail("task ", name(), " evaluates a model and cannot run without one (internal error: needs_model() is true)");
}

namespace {

// A registry entry of a SpecTask: its name, its summary for `lminf tasks`, a factory and its keys' help.
template <class T>
TaskInfo entry(const std::string& summary) {
  return {T().name(), summary, [] { return std::make_unique<T>(); },
          [] { return describe_spec<typename T::Section>("task"); }};
}

}  // namespace

// The one list of tasks. Add a task here and in docs/yaml.md (docs/adding_a_task.md).
const std::vector<TaskInfo>& task_registry() {
  static const std::vector<TaskInfo> tasks = {
      entry<PerplexityTask>("per-token NLL of each sequence; mean NLL, perplexity, NLL by position bucket"),
      entry<AttentionDumpTask>("records the dump: section's factors (attention logits, entropy, features) to HDF5"),
      entry<PretrainTask>("train a Llama-architecture model from scratch; writes a Hugging Face model folder"),
      entry<StreamingPerplexityTask>(
          "one shuffled stream of the documents through a bounded KV cache; per-token NLL, resumable"),
      entry<GenerationTask>(
          "greedy continuations at fixed depths scored against the true continuation (BLEU-4, ROUGE-1/2/L)"),
      entry<QaTask>(
          "question answering over long documents from JSONL: prompt template, truncation, stop strings, SQuAD F1/EM"),
      entry<PasskeyTask>(
          "passkey retrieval and a needle-in-a-haystack grid: accuracy by prompt length and needle depth"),
      entry<RulerTask>("RULER's synthetic suite (niah, vt, cwe, fwe, qa) offline: scores by task x length, effective length"),
  };
  return tasks;
}

std::unique_ptr<Task> make_task(const std::string& type, const std::string& where) {
  std::vector<std::string> names;
  for (const auto& t : task_registry()) {
    if (t.name == type) return t.make();
    names.push_back(t.name);
  }
  const std::string near = closest_match(type, names);
  fail(where, "task.type: \"", type, "\" is not a task", near.empty() ? "" : " (did you mean \"" + near + "\"?)",
       "; available: ", join_list(names));
}

}  // namespace lminf
