// What a resumable task compares before it continues a partial run in output.dir: the resolved
// configuration that decides its numbers, as YAML text, and a short hash of it. Shared by
// streaming_perplexity (its stream state) and the record tasks (experiments/outputs/record_journal.h).
#pragma once

#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "experiments/experiment_spec.h"

namespace lminf {

// The experiment as YAML text without name, threads, output and sweep (which never change the
// numbers) and without the task keys `ignored_task_keys` (e.g. flush_every).
std::string resume_config(const ExperimentSpec& spec, const YAML::Node& task_resolved,
                          const std::vector<std::string>& ignored_task_keys);

// 64-bit FNV-1a of `text` as 16 hex digits (stable across platforms and builds).
std::string config_hash(const std::string& text);

// The keys two resume configurations differ in, one "\n    key: old -> new" line each (for messages).
std::string config_differences(const std::string& old_yaml, const std::string& new_yaml);

}  // namespace lminf
