// KV cache for incremental decoding and chunked streaming. It stores PRE-RoPE keys, so the same
// cache serves vanilla attention (keys rotated at their cache index), LM-Infinite's lambda attention
// (global keys seen unrotated) and StreamingLLM's re-indexing. A CachePolicy decides what is kept.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

namespace lminf {

// The cache of one layer: a growable buffer, appended in place (amortised O(1) per token).
class LayerCache {
 public:
  // k_new, v_new: [B, Hkv_local, T, D] pre-RoPE. After the call keys()/values() include them.
  void append(const at::Tensor& k_new, const at::Tensor& v_new);
  int64_t size() const { return len_; }
  at::Tensor keys() const;    // [B, Hkv_local, size, D] view
  at::Tensor values() const;  // [B, Hkv_local, size, D] view
  // Keeps cache entries [0, n_head) and [size-n_tail, size), dropping the middle (n_head+n_tail < size).
  void keep_head_and_tail(int64_t n_head, int64_t n_tail);
  void clear() { len_ = 0; }
  int64_t capacity() const { return k_.defined() ? k_.size(2) : 0; }

 private:
  void reserve(int64_t n);
  at::Tensor k_, v_;  // [B, Hkv_local, capacity, D]
  int64_t len_ = 0;
};

// Decides what a layer's cache keeps after each forward call. Positions inside the cache are the
// cache indices 0..size-1: a policy that evicts entries renumbers the survivors.
class CachePolicy {
 public:
  virtual ~CachePolicy() = default;
  virtual std::string name() const = 0;
  virtual void trim(LayerCache& cache) const = 0;
  // Upper bound on entries kept after trim (-1: unbounded).
  virtual int64_t max_size() const = 0;
};

// Keeps everything (vanilla attention: cache index == absolute position).
class KeepAllPolicy final : public CachePolicy {
 public:
  std::string name() const override { return "keep_all"; }
  void trim(LayerCache&) const override {}
  int64_t max_size() const override { return -1; }
};

// Keeps the first n_head entries ever cached and the last n_tail (LM-Infinite: G and L;
// StreamingLLM: sinks and recent window). Memory is bounded for streams of any length.
class HeadTailPolicy final : public CachePolicy {
 public:
  HeadTailPolicy(int64_t n_head, int64_t n_tail) : n_head_(n_head), n_tail_(n_tail) {}
  std::string name() const override;
  void trim(LayerCache& cache) const override;
  int64_t max_size() const override { return n_head_ + n_tail_; }

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
  int64_t bytes() const;  // memory held by the buffers

 private:
  std::vector<LayerCache> layers_;
  std::shared_ptr<const CachePolicy> policy_;
  int64_t n_fed_ = 0;
};

}  // namespace lminf
