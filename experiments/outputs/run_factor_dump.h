// The factor dump of a run (analysis/factors/factor_dump.h) as a task opens it: from the run's
// `dump:` section, model and output folder, with its observers attached to the run's observers.
#pragma once

#include <cstdint>
#include <memory>

#include "analysis/factors/factor_dump.h"
#include "experiments/task.h"

namespace lminf {

// The dump of ctx.spec.dump (null when it records nothing); its observers are added to ctx.observers.
// max_length: the longest sequence the task will feed.
std::unique_ptr<FactorDump> open_factor_dump(RunContext& ctx, int64_t max_length);

}  // namespace lminf
