// The AttentionVariant seam. A model hands a variant the PRE-RoPE queries, keys and values of one
// forward call (keys and values include the cache), the positional encoding and the observers; the
// variant applies the position encoding itself (LM-Infinite's lambda attention needs a second,
// "stationary" view of queries and keys) and returns the attention output.
//
// Position encodings (exactly one is set): rotary (`rope`: Llama's rotate-half, GPT-J's partial
// interleaved -- the layout lives in the RotaryEmbedding) or ALiBi (`alibi_slopes`, MPT: logit +=
// -slope_h * distance). A variant states each key's effective distance; the encoding realises it.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "framework/transformer/kv_cache.h"
#include "framework/transformer/model_config.h"
#include "framework/transformer/observer.h"
#include "framework/transformer/rope.h"

namespace lminf {

struct AttentionCall {
  at::Tensor q;  // [B, H_local, Tq, D] pre-RoPE queries of this call
  at::Tensor k;  // [B, Hkv_local, K, D] pre-RoPE keys: cache entries then this call's keys
  at::Tensor v;  // [B, Hkv_local, K, D]
  // Cache index of the first query (= K - Tq). Query row i sits at cache index q_offset + i; key j at j.
  int64_t q_offset = 0;
  // Absolute stream position of query row 0 (equals q_offset until a bounded cache evicts entries).
  int64_t abs_q_start = 0;
  const RotaryEmbedding* rope = nullptr;  // null for families without rotary embeddings
  at::Tensor alibi_slopes;                // [H_local] float32 slopes of the local heads (global heads
                                          // head_offset...): ALiBi families only, else undefined
  std::optional<int64_t> sliding_window;  // Mistral: keys at distance >= window are masked
  int64_t layer = 0;
  int64_t head_offset = 0;                 // global index of local head 0 (tensor parallelism)
  const ObserverSet* observers = nullptr;  // may be null
  // Asked by the KV cache's policy (CachePolicy::mass_rows; null or rows 0: nothing asked): the
  // variant fills key_mass->sum with the attention mass of the call's last key_mass->rows queries.
  KeyMass* key_mass = nullptr;
  // The layer's KV cache when k/v are its entries (null without a cache): a variant that sees every
  // key at its cache index may take its rotated keys from it (LayerCache::rotated_keys).
  LayerCache* cache = nullptr;
};

// What a variant can run; the experiment loader reports every unsupported combination up front.
struct VariantSupport {
  // The variant moves keys to other distances, which only a relative position encoding can realise:
  // the model must have rotary embeddings or ALiBi (attention/registry.cpp: has_relative_positions).
  bool needs_relative_positions = false;
  bool gqa = true;
  bool decode = true;           // incremental decoding with a KV cache
  bool tensor_parallel = true;  // heads local to a rank
  // Reports the attention mass of its keys (AttentionCall::key_mass), which the evicting KV-cache
  // policies (attention.cache) need.
  bool key_mass = true;
};

class AttentionVariant {
 public:
  virtual ~AttentionVariant() = default;
  virtual std::string name() const = 0;
  virtual VariantSupport support() const = 0;
  // The reasons this variant, with its parameters, cannot run `model` (beyond support()): e.g. a band
  // wider than the model's sliding_window. Each names the attention key and the fix.
  virtual std::vector<std::string> model_problems(const ModelConfig& model, int tensor_parallel) const { return {}; }
  // Output: [B, H_local, Tq, D] in q's dtype.
  virtual at::Tensor forward(const AttentionCall& call) const = 0;
  // What the KV cache keeps between calls (vanilla: everything).
  virtual std::shared_ptr<const CachePolicy> cache_policy() const { return std::make_shared<KeepAllPolicy>(); }
};

// "attention.KEY=BAND exceeds the model's sliding_window (...)" when a variant's band is wider than
// the window a sliding-window model (Mistral) was trained with: it never saw those distances.
inline std::vector<std::string> sliding_window_problems(const std::string& key, int64_t band, const ModelConfig& model) {
  if (!model.sliding_window || band <= *model.sliding_window) return {};
  const std::string w = std::to_string(*model.sliding_window);
  return {"attention." + key + "=" + std::to_string(band) + " exceeds the model's sliding_window (" + w +
          ", config.json); set it <= " + w};
}

}  // namespace lminf
