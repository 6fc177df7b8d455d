// Loading an experiment (YAML + --set overrides -> validated spec, every problem reported before any
// weight is read) and running it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "experiments/experiment_spec.h"
#include "experiments/task.h"
#include "framework/transformer/model_config.h"
#include "parallel/communicator.h"

namespace lminf {

struct LoadedExperiment {
  ExperimentSpec spec;
  SpecSource source;
  std::unique_ptr<Task> task;
  ModelConfig model_config;
  YAML::Node resolved;  // every key with its value, task section included
};

// Throws one Error listing every problem found (file:line for YAML keys, --set for overrides).
LoadedExperiment load_experiment(const std::string& file, const std::vector<std::string>& overrides, int world_size);

// Runs a loaded experiment: writes config.yaml before any compute, loads the model, runs the task.
void run_experiment(LoadedExperiment& exp, Communicator& world);

// `lminf run`: the experiment, or, when it has a `sweep:` section, every point of the sweep into
// output.dir/<point> (completed points skipped unless output.overwrite), then the combined table.
void run_file(const std::string& file, const std::vector<std::string>& overrides, Communicator& world, bool dry_run);

}  // namespace lminf
