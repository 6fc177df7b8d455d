// Pieces the model families (Llama, MPT, GPT-J) share: the tensor-parallel split of heads, MLP rows
// and vocabulary; reading this rank's share of every tensor of the family's weight table (full
// shapes checked against config.json); the parameters and their bytes from that table; one layer's
// attention through the variant and the KV cache; and the vocab-parallel head (logits gathered, NLL
// in row chunks without gathering).
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "attention/attention_variant.h"
#include "framework/io/checkpoint.h"
#include "framework/transformer/kv_cache.h"
#include "models/causal_lm.h"
#include "models/model_family.h"
#include "parallel/communicator.h"
#include "parallel/shard.h"

namespace lminf {

// What every family holds beside its weights: the config, the run dtype, the tensor-parallel group,
// this rank's part of the model split over it, and the weight table (the family's WeightSpecs bound
// to its members) from which the parameters and their bytes follow. A family's class adds its
// members, fills them with load_weights, sets the head and implements forward().
class FamilyModel : public CausalLM {
 public:
  FamilyModel(const FamilyModel&) = delete;  // weights_ points into the object itself
  FamilyModel& operator=(const FamilyModel&) = delete;

  const ModelConfig& config() const override { return config_; }
  at::ScalarType dtype() const override { return dtype_; }
  at::Device device() const override { return head_w_.device(); }
  at::Tensor logits(const at::Tensor& hidden) override;
  at::Tensor token_nll(const at::Tensor& hidden, const at::Tensor& targets) override;
  // The table's tensors in its order (a tied head is the embedding and is not listed again).
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() override;
  int64_t weight_bytes() const override;

 protected:
  // Throws (naming config.source) when the model cannot split over opts.tp's size. n_head_kv:
  // config.n_head_kv for grouped-query families, config.n_head for families without kv groups.
  FamilyModel(const ModelConfig& config, const LoadOptions& opts, int64_t n_head_kv);

  // Reads this rank's share of every tensor of `weights` into its slot, on opts.device.
  void load_weights(Checkpoint& ckpt, const LoadOptions& opts, std::vector<WeightSpec> weights);

  ModelConfig config_;
  at::ScalarType dtype_;
  LocalCommunicator local_;  // the group of one rank when opts.tp is null
  Communicator* tp_;         // opts.tp or &local_
  HeadShard heads_;          // this rank's query and kv heads
  Shard ffn_;                // intermediate rows; need not split evenly (172 over 8 ranks: 22 or 21 rows)
  Shard vocab_;              // rows of the embedding and the head (vocab-parallel)
  at::Tensor head_w_;        // [V_local, hidden]: set by the family (the embedding when tied)
  at::Tensor head_b_;        // [V_local] or undefined

 private:
  Shard share(Part part) const;  // this rank's rows of a tensor cut by `part`
  std::vector<WeightSpec> weights_;
};

// A head shard as a shard of rows of k features per head (k = head_dim: rows of q/k/v projections).
inline Shard scaled(Shard s, int64_t k) { return Shard{s.start * k, s.length * k}; }

// Rows of a weight table: a replicated tensor, or one cut along its rows (dim 0, column-parallel) or
// columns (dim 1, row-parallel) to the rank's `part`.
inline WeightSpec whole(std::string name, std::vector<int64_t> shape, Init init, at::Tensor& slot) {
  return WeightSpec{std::move(name), std::move(shape), init, Part::kWhole, 0, 1, &slot};
}
inline WeightSpec rows(std::string name, std::vector<int64_t> shape, Init init, Part part, at::Tensor& slot) {
  return WeightSpec{std::move(name), std::move(shape), init, part, 0, 1, &slot};
}
inline WeightSpec cols(std::string name, std::vector<int64_t> shape, Init init, Part part, at::Tensor& slot) {
  return WeightSpec{std::move(name), std::move(shape), init, part, 1, 1, &slot};
}

// Sizes `layers` to n and calls add(prefix, layer) for each, with the prefix "<stem>N." of layer N's
// tensor names.
template <class Layer, class F>
void for_each_layer(std::vector<Layer>& layers, int64_t n, const std::string& stem, F&& add) {
  layers.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) add(stem + std::to_string(i) + ".", layers[static_cast<size_t>(i)]);
}

// The table of `layout` (a family's function binding its WeightSpecs to the members of a W) without
// the slots: the family record's `weights`, so that the loader and the record share one table.
template <class W, std::vector<WeightSpec> (*layout)(const ModelConfig&, W&)>
std::vector<WeightSpec> unbound_weights(const ModelConfig& c) {
  W scratch;
  std::vector<WeightSpec> table = layout(c, scratch);
  for (WeightSpec& w : table) w.slot = nullptr;
  return table;
}

// The family record's `load`: a Model built from (ckpt, config, opts).
template <class Model>
std::unique_ptr<CausalLM> load_as(Checkpoint& ckpt, const ModelConfig& c, const LoadOptions& opts) {
  return std::make_unique<Model>(ckpt, c, opts);
}

// The sizes of a preset (a Llama config) for a family of `model_type` without kv groups or a
// Llama-sized MLP: one kv head per query head, head_dim = hidden / heads, intermediate 4 x hidden,
// LayerNorm epsilon 1e-5.
ModelConfig layer_norm_preset(ModelConfig sized, const std::string& model_type);

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

}  // namespace lminf
