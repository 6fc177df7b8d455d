// load_model through the families table, and the run dtypes.
#include "framework/io/checkpoint.h"
#include "framework/core/error.h"
#include "models/causal_lm.h"
#include "models/model_families.h"

namespace lminf {

std::unique_ptr<CausalLM> load_model(const std::filesystem::path& dir, const ModelConfig& config,
                                     const LoadOptions& opts) {
  Checkpoint ckpt = Checkpoint::open(dir);
  return load_model(ckpt, config, opts);
}

std::unique_ptr<CausalLM> load_model(Checkpoint& ckpt, const ModelConfig& config, const LoadOptions& opts) {
  return find_family(config.model_type, (ckpt.dir() / "config.json").string()).load(ckpt, config, opts);
}

at::ScalarType parse_dtype(const std::string& name, const std::string& key) {
  if (name == "float32" || name == "fp32") return at::kFloat;
  if (name == "bfloat16" || name == "bf16") return at::kBFloat16;
  if (name == "float16" || name == "fp16") return at::kHalf;
  if (name == "float64" || name == "fp64") return at::kDouble;
  fail(key, ": \"", name, "\" is not a run dtype (use float32 or bfloat16; float16 and float64 also work)");
}

std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    case at::kDouble: return "float64";
    default: return std::string(c10::toString(t));
  }
}

}  // namespace lminf
