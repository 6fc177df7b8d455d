#include "framework/io/checkpoint.h"
#include "framework/core/error.h"
#include "models/causal_lm.h"
#include "models/families/gptj.h"
#include "models/families/llama.h"
#include "models/families/mpt.h"

namespace lminf {

std::unique_ptr<CausalLM> load_model(const std::filesystem::path& dir, const ModelConfig& config,
                                     const LoadOptions& opts) {
  Checkpoint ckpt = Checkpoint::open(dir);
  return load_model(ckpt, config, opts);
}

std::unique_ptr<CausalLM> load_model(Checkpoint& ckpt, const ModelConfig& config, const LoadOptions& opts) {
  if (config.model_type == "llama" || config.model_type == "mistral") {
    return std::make_unique<LlamaModel>(ckpt, config, opts);
  }
  if (config.model_type == "mpt") return std::make_unique<MptModel>(ckpt, config, opts);
  if (config.model_type == "gptj") return std::make_unique<GptjModel>(ckpt, config, opts);
  fail(ckpt.dir().string(), "/config.json: model_type \"", config.model_type,
       "\" is not supported (supported: llama, mistral, mpt, gptj)");
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
