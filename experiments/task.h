// The Task seam: each task owns its config section (task.*) and its output files. Tasks are
// registered by name in one explicit list (experiments/tasks/task_registry.cpp).
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "attention/attention_variant.h"
#include "experiments/experiment_spec.h"
#include "framework/transformer/observer.h"
#include "models/causal_lm.h"
#include "parallel/communicator.h"

namespace lminf {

// Everything a task needs to run, built by run_experiment().
struct RunContext {
  const ExperimentSpec& spec;
  const ModelConfig& model_config;
  CausalLM& model;
  const AttentionVariant& attention;
  Communicator& world;
  std::filesystem::path out_dir;    // output.dir: resume state (journals, stream state) lives here
  std::filesystem::path final_dir;  // the run's final outputs go here (output.dir/.lminf-staging,
                                    // moved into output.dir when the run completes: outputs/output_stage.h)
  bool writer = true;       // this rank writes outputs and prints progress (rank 0)
  nlohmann::json provenance;  // resolved config, model, git revision, world size, dtype
  ObserverSet observers;
  // This rank's data-parallel group (one rank per model replica; rank = which replica). Tasks give
  // each replica a disjoint share of the work and merge over it. Null: a single replica.
  Communicator* data_parallel = nullptr;
};

// What a task that produces a model (instead of reading one) gets: no model is loaded for it.
struct ProducerContext {
  const ExperimentSpec& spec;
  Communicator& world;
  std::filesystem::path out_dir;    // as in RunContext: resume state (checkpoints)
  std::filesystem::path final_dir;  // as in RunContext: the final outputs
  bool writer = true;
  nlohmann::json provenance;
};

class Task {
 public:
  virtual ~Task() = default;
  virtual std::string name() const = 0;
  // Reads and validates the task section (errors name file:line); runs before any weight is read.
  virtual void configure(const YAML::Node& section, const SpecSource& src) = 0;
  // The resolved task section (every key, defaults included) for config.yaml.
  virtual YAML::Node resolved() const = 0;
  // Problems of this task with this experiment and model (empty: none); before any weight is read.
  virtual std::vector<std::string> problems(const ExperimentSpec& spec, const ModelConfig& model) const { return {}; }
  // Output files this task writes into output.dir (for the overwrite check).
  virtual std::vector<std::string> outputs() const = 0;
  virtual void run(RunContext& ctx) = 0;

  // Tasks that produce a model (pretrain) return false: no model.path is read or loaded, and
  // run_producer() is called instead of run().
  virtual bool needs_model() const { return true; }
  // Tasks that make their own inputs (passkey) return false: the experiment must have no data section.
  virtual bool reads_data() const { return true; }
  virtual void run_producer(ProducerContext& ctx);
};

struct TaskInfo {
  std::string name;
  std::string summary;
  std::function<std::unique_ptr<Task>()> make;
  std::function<std::string()> describe_keys;  // help text of task.* keys
};

const std::vector<TaskInfo>& task_registry();
// Throws naming task.type's file:line and listing the tasks.
std::unique_ptr<Task> make_task(const std::string& type, const std::string& where);

}  // namespace lminf
