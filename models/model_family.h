// What a model family knows, in one record: the config.json keys it reads and writes, its checks,
// its weights (names, shapes, tensor-parallel split, how a random checkpoint draws them) and how it
// builds its model. Each family defines its record in models/families/<family>.cpp; the one list is
// models/model_families.cpp. Nothing outside a family's file names its keys or its tensors.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "framework/io/checkpoint.h"
#include "framework/transformer/model_config.h"
#include "models/causal_lm.h"

namespace lminf {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// How a random checkpoint draws a tensor (models/random_checkpoint.cpp): embeddings N(0, 0.5); matrices
// [out, in] N(0, 1/sqrt(in)), output projections (into the residual stream) half that; norm weights
// 1 + N(0, 0.1); biases N(0, 0.1).
enum class Init { kEmbedding, kLinear, kOutput, kNorm, kBias };

// Which of a rank's tensor-parallel shares a tensor is cut to (models/families/family_common.h).
enum class Part {
  kWhole,    // replicated
  kVocab,    // the rank's vocabulary rows
  kQHeads,   // head_dim features of each of the rank's query heads
  kKvHeads,  // head_dim features of each of the rank's key/value heads
  kFfn,      // the rank's intermediate rows
};

// One tensor of a checkpoint under its Hugging Face name.
struct WeightSpec {
  std::string name;
  std::vector<int64_t> shape;  // the full (unsharded) shape
  Init init = Init::kLinear;
  Part part = Part::kWhole;
  int64_t dim = 0;     // the dimension `part` cuts: 0 rows (column-parallel), 1 columns (row-parallel)
  int64_t blocks = 1;  // > 1: `dim` holds that many equal blocks, each cut alike (MPT's fused q|k|v)
  at::Tensor* slot = nullptr;  // where the model keeps it (the loader fills it); null in the family record
};

struct ModelFamily {
  std::string name;                      // `lminf random-model --family NAME`
  std::vector<std::string> model_types;  // the config.json model_type values it reads (llama: also mistral)
  // config.json (its own keys) -> ModelConfig, before validate; `where` names the file for errors.
  // model_type and the special tokens (bos/eos ids, torch_dtype) are read and written for every family
  // by models/model_config_json.cpp.
  ModelConfig (*from_json)(const nlohmann::json& j, const std::string& where);
  // ModelConfig -> an HF-compatible config.json in its own keys.
  nlohmann::json (*to_json)(const ModelConfig& c);
  // The family's checks after ModelConfig::check_sizes; throws naming `where` and the key.
  void (*validate)(const ModelConfig& c, const std::string& where);
  // Every tensor of a checkpoint of `c`, in the order random checkpoints draw them.
  std::vector<WeightSpec> (*weights)(const ModelConfig& c);
  // The model of a checkpoint (config already validated); each tensor-parallel rank reads its slices.
  std::unique_ptr<CausalLM> (*load)(Checkpoint& ckpt, const ModelConfig& c, const LoadOptions& opts);
  // A preset's sizes (a Llama config from llama_preset) as a model of this family.
  ModelConfig (*preset)(ModelConfig sized);
};

}  // namespace lminf
