// The interface every model family implements (Llama/Mistral now; MPT and GPT-J plug in beside).
#pragma once

#include <ATen/ATen.h>

#include <filesystem>
#include <memory>
#include <optional>

#include "attention/attention_variant.h"
#include "framework/io/checkpoint.h"
#include "framework/transformer/kv_cache.h"
#include "framework/transformer/model_config.h"
#include "framework/transformer/observer.h"
#include "parallel/communicator.h"

namespace lminf {

struct ForwardContext {
  const AttentionVariant* attention = nullptr;  // required
  const ObserverSet* observers = nullptr;       // optional
};

struct LoadOptions {
  at::ScalarType dtype = at::kFloat;  // run dtype: weights are converted to it on load
  Communicator* tp = nullptr;         // tensor-parallel group; null = one rank
  at::Device device = at::kCPU;       // where weights live and the forward pass runs (model.device)
};

class CausalLM {
 public:
  virtual ~CausalLM() = default;
  virtual const ModelConfig& config() const = 0;
  virtual at::ScalarType dtype() const = 0;

  // Where the weights live (model.device). forward()/token_nll() accept CPU ids and targets and
  // return tensors on this device; callers move results to the CPU to write them.
  virtual at::Device device() const = 0;

  // Runs ids ([B, T] int64) through the model after whatever `cache` holds (null: no cache, the
  // sequence starts at position 0). Appends to and trims the cache. Returns the final-normed hidden
  // states [B, T, hidden] in the run dtype, replicated on every tensor-parallel rank.
  virtual at::Tensor forward(const at::Tensor& ids, KVCache* cache, const ForwardContext& ctx) = 0;

  // Full-vocabulary logits [B, T, V] float32 (gathered over tensor-parallel ranks).
  virtual at::Tensor logits(const at::Tensor& hidden) = 0;

  // NLL of targets ([B, T] int64) under the next-token distribution at each hidden position
  // ([B, T, hidden]): [B, T] float32. Computed in row chunks and vocab-parallel, so the full
  // [T, V] logits never exist.
  virtual at::Tensor token_nll(const at::Tensor& hidden, const at::Tensor& targets) = 0;

  // This rank's weights under their Hugging Face names (handles to the live tensors: training sets
  // requires_grad on them and the optimizer updates them in place). Tied weights appear once.
  virtual std::vector<std::pair<std::string, at::Tensor>> named_parameters() = 0;

  // Bytes of weights resident on this rank.
  virtual int64_t weight_bytes() const = 0;

  KVCache new_cache(const AttentionVariant& attention) const {
    return KVCache(config().n_layer, attention.cache_policy());
  }
};

// Reads the checkpoint of `dir` for `config` (already read and validated) and builds the family's
// model. Each tensor-parallel rank reads only its slices.
std::unique_ptr<CausalLM> load_model(const std::filesystem::path& dir, const ModelConfig& config,
                                     const LoadOptions& opts);
// The same from an opened checkpoint (the caller reads ckpt.bytes_read() afterwards).
std::unique_ptr<CausalLM> load_model(Checkpoint& ckpt, const ModelConfig& config, const LoadOptions& opts);

// "float32" | "bfloat16" | "float16" -> dtype; throws naming `key` otherwise.
at::ScalarType parse_dtype(const std::string& name, const std::string& key);
std::string dtype_name(at::ScalarType t);

}  // namespace lminf
