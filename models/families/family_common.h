// Pieces the model families (Llama, MPT, GPT-J) share: the tensor-parallel split of heads, MLP rows
// and vocabulary, reading (sliced) weights with their full shapes checked against config.json, one
// layer's attention through the variant and the KV cache, and the vocab-parallel head (logits
// gathered; NLL in row chunks without gathering).
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <vector>

#include "attention/attention_variant.h"
#include "framework/io/checkpoint.h"
#include "framework/transformer/kv_cache.h"
#include "models/causal_lm.h"
#include "parallel/communicator.h"
#include "parallel/shard.h"

namespace lminf {

// What every family holds beside its weights: the config, the run dtype, the tensor-parallel group
// and this rank's part of the model split over it.
class FamilyModel : public CausalLM {
 public:
  const ModelConfig& config() const override { return config_; }
  at::ScalarType dtype() const override { return dtype_; }

 protected:
  // Throws (naming config.source) when the model cannot split over opts.tp's size. n_head_kv:
  // config.n_head_kv for grouped-query families, config.n_head for families without kv groups.
  FamilyModel(const ModelConfig& config, const LoadOptions& opts, int64_t n_head_kv);

  ModelConfig config_;
  at::ScalarType dtype_;
  LocalCommunicator local_;  // the group of one rank when opts.tp is null
  Communicator* tp_;         // opts.tp or &local_
  HeadShard heads_;          // this rank's query and kv heads
  Shard ffn_;                // intermediate rows; need not split evenly (172 over 8 ranks: 22 or 21 rows)
  Shard vocab_;              // rows of the embedding and the head (vocab-parallel)
};

// A head shard as a shard of rows of k features per head (k = head_dim: rows of q/k/v projections).
inline Shard scaled(Shard s, int64_t k) { return Shard{s.start * k, s.length * k}; }

// Reads `name`, checking its full shape, and keeps rows (dim 0, column-parallel) or columns (dim 1,
// row-parallel) of one shard.
struct WeightLoader {
  Checkpoint& ckpt;
  at::ScalarType dtype;
  at::Device device = at::kCPU;  // read on the CPU (memory-mapped), then moved (model.device)

  at::Tensor full(const std::string& name, std::vector<int64_t> shape) const;
  at::Tensor slice(const std::string& name, std::vector<int64_t> shape, int64_t dim, Shard s) const;
  // Undefined when !present.
  at::Tensor optional_full(bool present, const std::string& name, std::vector<int64_t> shape) const;
  at::Tensor optional_slice(bool present, const std::string& name, std::vector<int64_t> shape, int64_t dim,
                            Shard s) const;
};

// Checks the arguments of `model`'s forward(): an attention variant and ids [B, T].
void check_forward_args(const char* model, const at::Tensor& ids, const ForwardContext& ctx);
// ctx.observers, or null when there are none (saves the wants() calls).
const ObserverSet* active_observers(const ForwardContext& ctx);

// The position encoding and placement of one attention layer.
struct LayerAttention {
  const RotaryEmbedding* rope = nullptr;  // rotary families
  at::Tensor alibi_slopes;                // [H_local] float32, ALiBi families
  std::optional<int64_t> sliding_window;
  int64_t layer = 0;
  int64_t head_offset = 0;  // global index of local query head 0
  int64_t kv_head_offset = 0;
  int64_t abs_start = 0;  // absolute stream position of this call's first token
};

// q: [B, H_local, T, D], k, v: [B, Hkv_local, T, D] pre-position-encoding. Appends k/v to `cache`
// (if any), runs ctx.attention over the cache, trims the cache by the variant's policy, emits
// kQuery/kKey/kAttnOut to the observers. Returns [B, T, H_local * D].
at::Tensor run_attention_layer(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, KVCache* cache,
                               const ForwardContext& ctx, const LayerAttention& la);

// Full-vocabulary logits [B, T, V] float32 of hidden [B, T, hidden] with the vocab-split head
// w [V_local, hidden] and bias b [V_local] (or undefined), gathered over `tp`.
at::Tensor vocab_parallel_logits(const at::Tensor& hidden, const at::Tensor& w, const at::Tensor& b, Communicator& tp);
// Per-token NLL [B, T] float32 of targets ([B, T] int64, moved to hidden's device) under the same
// head, in row chunks of 1024 (they bound the [rows, V_local] logits: 32000 x 1024 = 128 MiB float32).
at::Tensor vocab_parallel_token_nll(const at::Tensor& hidden, const at::Tensor& targets, const at::Tensor& w,
                                    const at::Tensor& b, int64_t vocab_start, Communicator& tp);

// Sum of the bytes of the defined tensors.
int64_t tensor_bytes(const std::vector<const at::Tensor*>& tensors);

}  // namespace lminf
