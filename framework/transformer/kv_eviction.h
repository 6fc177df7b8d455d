// KV-cache eviction by attention mass: H2O and SnapKV as cache policies (framework/transformer/kv_cache.h).
// Both choose, per (sequence, kv head), which cache entries to keep from the attention probabilities
// the variant's kernels report for the call that just ran (KeyMass: column sums of the softmax over
// the query heads of the kv head's group, so under grouped-query attention the group votes together
// and every kv head keeps the same count). Survivors are renumbered 0..n-1 in their original order,
// the StreamingLLM convention of every lminf policy: the variant sees cache indices as positions.
//
// `n_head` entries at the start of the cache are never evicted: the windowed variant's own starting
// tokens (lambda's G, streaming's sinks); 0 for vanilla. The policy chooses among the rest.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "framework/transformer/kv_cache.h"

namespace lminf {

// H2O (Zhang et al., NeurIPS 2023; the names of the reference's H2OKVCache_LayerWise). Every entry
// accumulates the attention mass it receives from every query of every call (all rows of each
// call). After a call, when more than n_head + hh_size + recent_size entries are cached, it keeps the
// first n_head, the hh_size entries of [n_head, size - recent_size) with the largest accumulated mass
// (the heavy hitters), and the last recent_size. Scores move with their entries. Bounded.
struct H2OOptions {
  int64_t hh_size = 4;        // heavy hitters kept per (sequence, kv head)
  int64_t recent_size = 512;  // most recent entries kept (the query's own included)
  int64_t n_head = 0;         // protected first entries
};

class H2OPolicy final : public CachePolicy {
 public:
  explicit H2OPolicy(const H2OOptions& o);
  std::string name() const override;
  int64_t mass_rows(int64_t n_queries, int64_t) const override { return n_queries; }
  using CachePolicy::trim;
  void trim(LayerCache& cache, const KeyMass& mass) const override;
  int64_t max_size() const override { return o_.n_head + o_.hh_size + o_.recent_size; }

 private:
  H2OOptions o_;
};

// SnapKV (Li et al., 2024; the names of the reference's SnapKVCluster). After a call of at least
// window_size queries that leaves more than n_head + max_capacity_prompt entries, the call's last
// window_size queries (the observation window) vote for the entries [n_head, size - window_size)
// with their attention probabilities, summed over the window; the votes are pooled along the keys
// (kernel_size wide, stride 1, padded by kernel_size / 2: avgpool divides by kernel_size, maxpool
// pads with -inf); the max_capacity_prompt - window_size best entries are kept with the first n_head
// and the window itself. Calls with fewer queries (decoding) compress nothing, as in the reference:
// bounded only when every call feeds at least window_size tokens.
struct SnapKVOptions {
  int64_t window_size = 32;
  int64_t max_capacity_prompt = 2048;  // entries kept besides the protected n_head, the window included
  int64_t kernel_size = 5;             // odd
  bool max_pool = false;               // maxpool (true) or avgpool
  int64_t n_head = 0;                  // protected first entries
};

class SnapKVPolicy final : public CachePolicy {
 public:
  explicit SnapKVPolicy(const SnapKVOptions& o);
  std::string name() const override;
  int64_t mass_rows(int64_t n_queries, int64_t n_keys) const override;
  using CachePolicy::trim;
  void trim(LayerCache& cache, const KeyMass& mass) const override;
  int64_t max_size() const override { return -1; }
  int64_t max_size_for_chunks(int64_t chunk) const override;

 private:
  SnapKVOptions o_;
};

// The entries a per-head eviction keeps: [0, n_head), the `keep` entries of the candidates
// [n_head, n_head + C) with the largest `scores` ([B, Hkv, C]), and [tail_start, size). Returns
// [B, Hkv, n_head + keep + size - tail_start] int64, ascending per row (for LayerCache::keep_per_head).
at::Tensor kept_entries(const at::Tensor& scores, int64_t n_head, int64_t keep, int64_t tail_start, int64_t size);

// SnapKV's pooling of votes [B, Hkv, C] along C: avg_pool1d / max_pool1d with kernel_size (odd),
// stride 1, padding kernel_size / 2 (avgpool counts the zero padding, as torch does by default).
at::Tensor pool_votes(const at::Tensor& votes, int64_t kernel_size, bool max_pool);

}  // namespace lminf
