#include "experiments/outputs/run_factor_dump.h"

namespace lminf {

std::unique_ptr<FactorDump> open_factor_dump(RunContext& ctx, int64_t max_length) {
  const DumpSpec& d = ctx.spec.dump;
  if (!d.enabled()) return nullptr;
  FactorDumpOptions o;
  o.spec = d;
  o.model = ctx.model_config;
  o.max_length = max_length;
  o.provenance = ctx.provenance;
  o.path = ctx.final_dir / d.file;
  o.writer = ctx.writer;
  // With one data-parallel group the world is the tensor-parallel group (dump_problems refuses more).
  o.tp = ctx.spec.parallel.data_parallel == 1 ? &ctx.world : nullptr;
  auto dump = std::make_unique<FactorDump>(std::move(o));
  for (const auto& ob : dump->observers()) ctx.observers.add(ob);
  return dump;
}

}  // namespace lminf
