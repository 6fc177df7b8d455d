// The experiment spec: YAML file + --set overrides -> a validated experiment (load_experiment,
// experiments/run/run_experiment.h), with every section's and task's checks. Input: YAML \0 OVERRIDES
// (one KEY=VALUE a line). Relative paths resolve against the working directory: the ctest runs from
// the source tree, so the seeds' model and data paths (embedded/, configs/) exist and the checks
// against config.json, the tokenizer and the data run too.
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "experiments/run/run_experiment.h"

using namespace lminf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::quiet_logging();
  const auto parts = fuzz::split_input(data, size, '\0', 2);
  const std::string file = fuzz::write_scratch("experiment.yaml", parts[0]).string();
  std::vector<std::string> overrides;
  if (parts.size() > 1) {
    std::istringstream in(parts[1]);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) overrides.push_back(line);
  }
  fuzz::guarded([&] {
    LoadedExperiment exp = load_experiment(file, overrides, 1);
    YAML::Emitter out;
    out << exp.resolved;
  });
  return 0;
}
