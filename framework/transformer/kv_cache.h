// KV cache for incremental decoding and chunked streaming. It stores PRE-RoPE keys, so the same
// cache serves vanilla attention (keys rotated at their cache index), LM-Infinite's lambda attention
// (global keys seen unrotated) and StreamingLLM's re-indexing. A CachePolicy decides what is kept.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

namespace lminf {

class RotaryEmbedding;

// The cache of one layer: a growable buffer, appended in place (amortised O(1) per token). An
// evicting policy (framework/transformer/kv_eviction.h) may also keep a score per entry and head
// (H2O's accumulated attention mass), which moves with its entry.
class LayerCache {
 public:
  // k_new, v_new: [B, Hkv_local, T, D] pre-RoPE. After the call keys()/values() include them; the
  // new entries' scores (when the cache keeps scores) start at 0.
  void append(const at::Tensor& k_new, const at::Tensor& v_new);
  int64_t size() const { return len_; }
  at::Tensor keys() const;    // [B, Hkv_local, size, D] view
  at::Tensor values() const;  // [B, Hkv_local, size, D] view
  // [B, Hkv_local, size] float32 (float64 for a float64 cache) view; undefined until add_scores.
  at::Tensor scores() const;
  // scores += mass ([B, Hkv_local, size], any float dtype); the first call starts every score at 0.
  void add_scores(const at::Tensor& mass);
  // Keeps cache entries [0, n_head) and [size-n_tail, size), dropping the middle (n_head+n_tail < size).
  void keep_head_and_tail(int64_t n_head, int64_t n_tail);
  // Keeps, per (sequence, kv head), the entries idx[b, h, :] ([B, Hkv_local, n] int64, ascending,
  // every row n entries), renumbered 0..n-1 in that order; keys, values and scores move together.
  void keep_per_head(const at::Tensor& idx);
  // Keys rotated at their cache index by `rope` ([B, Hkv_local, size, D] view), for a variant that
  // sees every key at its cache index (vanilla): only the entries appended since the last call are
  // rotated, so a decoding step rotates one key instead of the whole cache. Kept beside the pre-RoPE
  // keys (it doubles the key memory) and dropped when entries are removed or renumbered.
  // rope.length_dependent() must be false (dynamic NTK rotates every key anew as the length grows).
  at::Tensor rotated_keys(const RotaryEmbedding& rope);
  void clear() {
    len_ = 0;
    s_ = at::Tensor();
    drop_rotated();
  }
  int64_t capacity() const { return k_.defined() ? k_.size(2) : 0; }
  int64_t bytes() const;  // memory held by the buffers (keys, values, scores)

 private:
  void reserve(int64_t n);
  void drop_rotated() { rotated_ = 0; }
  at::Tensor k_, v_;  // [B, Hkv_local, capacity, D]
  at::Tensor s_;      // [B, Hkv_local, capacity] scores, or undefined
  int64_t len_ = 0;
  at::Tensor rk_;                              // [B, Hkv_local, capacity, D] rotated keys, or undefined
  int64_t rotated_ = 0;                        // entries [0, rotated_) of rk_ are valid
  const RotaryEmbedding* rope_ = nullptr;      // the embedding rk_ was rotated by
};

// What a forward call leaves for the cache policy: the attention mass of its last `rows` query rows
// (CachePolicy::mass_rows asks; the attention variant fills `sum`).
struct KeyMass {
  int64_t rows = 0;  // 0: nothing asked
  // [B, Hkv_local, K] float32 (float64 for float64 inputs): for each key j (cache index) of the call,
  // the softmax probabilities it gets, summed over the asked rows and over the query heads of the kv
  // head's group. Undefined unless asked.
  at::Tensor sum;
};

// Decides what a layer's cache keeps after each forward call. Positions inside the cache are the
// cache indices 0..size-1: a policy that evicts entries renumbers the survivors.
class CachePolicy {
 public:
  virtual ~CachePolicy() = default;
  virtual std::string name() const = 0;
  // How many of a call's last query rows trim() needs the attention mass of (0: none), for a call of
  // n_queries queries over n_keys keys (the cache included).
  virtual int64_t mass_rows(int64_t n_queries, int64_t n_keys) const { return 0; }
  // After the call whose mass (as asked by mass_rows) is `mass`.
  virtual void trim(LayerCache& cache, const KeyMass& mass) const = 0;
  void trim(LayerCache& cache) const { trim(cache, KeyMass{}); }
  // Upper bound on entries kept after trim (-1: unbounded).
  virtual int64_t max_size() const = 0;
  // The bound when every call but the last feeds `chunk` tokens (a policy that compresses only calls
  // of enough queries, such as SnapKV, is bounded for some chunk sizes only).
  virtual int64_t max_size_for_chunks(int64_t chunk) const { return max_size(); }
};

// Keeps everything (vanilla attention: cache index == absolute position).
class KeepAllPolicy final : public CachePolicy {
 public:
  std::string name() const override { return "keep_all"; }
  using CachePolicy::trim;
  void trim(LayerCache&, const KeyMass&) const override {}
  int64_t max_size() const override { return -1; }
};

// Keeps the first n_head entries ever cached and the last n_tail (LM-Infinite: G and L;
// StreamingLLM: sinks and recent window). Memory is bounded for streams of any length.
class HeadTailPolicy final : public CachePolicy {
 public:
  HeadTailPolicy(int64_t n_head, int64_t n_tail) : n_head_(n_head), n_tail_(n_tail) {}
  std::string name() const override;
  using CachePolicy::trim;
  void trim(LayerCache& cache, const KeyMass&) const override;
  int64_t max_size() const override { return n_head_ + n_tail_; }
  int64_t n_head() const { return n_head_; }
  int64_t n_tail() const { return n_tail_; }

 private:
  int64_t n_head_, n_tail_;
};

// Every layer's cache plus the count of tokens fed so far (absolute stream position).
class KVCache {
 public:
  KVCache(int64_t n_layer, std::shared_ptr<const CachePolicy> policy);
  LayerCache& layer(int64_t l) { return layers_.at(static_cast<size_t>(l)); }
  const CachePolicy& policy() const { return *policy_; }
  // Cache entries before the current forward call (all layers hold the same count).
  int64_t size() const { return layers_.empty() ? 0 : layers_[0].size(); }
  int64_t n_fed() const { return n_fed_; }  // tokens fed through the model so far
  void advance(int64_t n) { n_fed_ += n; }
  void clear();
  int64_t bytes() const;  // memory held by the buffers (LayerCache::bytes of every layer)

 private:
  std::vector<LayerCache> layers_;
  std::shared_ptr<const CachePolicy> policy_;
  int64_t n_fed_ = 0;
};

}  // namespace lminf
