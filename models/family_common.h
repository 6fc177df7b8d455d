// Pieces the MPT and GPT-J families share: reading (sliced) weights with their full shapes checked
// against config.json, one layer's attention through the variant and the KV cache, and the
// vocab-parallel head (logits gathered; NLL in row chunks without gathering).
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <vector>

#include "attention/attention_variant.h"
#include "framework/checkpoint.h"
#include "framework/kv_cache.h"
#include "models/causal_lm.h"
#include "parallel/communicator.h"
#include "parallel/shard.h"

namespace lminf {

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
// Per-token NLL [B, T] float32 of targets under the same head, in row chunks of 1024.
at::Tensor vocab_parallel_token_nll(const at::Tensor& hidden, const at::Tensor& targets, const at::Tensor& w,
                                    const at::Tensor& b, int64_t vocab_start, Communicator& tp);

// Sum of the bytes of the defined tensors.
int64_t tensor_bytes(const std::vector<const at::Tensor*>& tensors);

}  // namespace lminf
