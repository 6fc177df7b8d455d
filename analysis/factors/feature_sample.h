// Factor 3: positional features. For the first `first` positions of each sequence and a strided
// sample of the rest, records the residual stream after chosen decoder blocks and the per-head
// pre-RoPE queries and keys and the attention outputs of chosen layers, so a PCA can show where the
// starting tokens sit in feature space.
//
// Sampled positions of a sequence of length L: p < min(first, L), and first, first + stride, ...
// below L (stride 0: the first positions only).
#pragma once

#include <map>
#include <utility>

#include "analysis/factors/factor_observer.h"

namespace lminf {

struct FeatureSampleOptions {
  std::vector<int64_t> hidden_states;  // hidden_states indices (HF numbering): l = after decoder block l (1-based)
  std::vector<int64_t> layers;         // attention layers (0-based blocks) for queries, keys, outputs
  bool query = true, key = true, attn_out = true;
  HeadSlots heads;     // recorded query heads (queries, attention outputs)
  HeadSlots kv_heads;  // recorded key/value heads (keys)
  int64_t first = 64;
  int64_t stride = 64;
  int64_t hidden_size = 0;
  int64_t head_dim = 0;
};

std::vector<int64_t> sampled_positions(int64_t length, int64_t first, int64_t stride);

// Records, one row per sampled (sequence, position):
//   factor3/sample_sequence        int64   [n]
//   factor3/sample_position        int64   [n]
//   factor3/hidden/hs_LL           float32 [n, hidden_size]          hidden_states[LL]
//   factor3/query/layer_LL         float32 [n, n_heads, head_dim]    pre-RoPE queries
//   factor3/key/layer_LL           float32 [n, n_kv_heads, head_dim] pre-RoPE keys
//   factor3/attn_out/layer_LL      float32 [n, n_heads, head_dim]    attention outputs (before o_proj)
class FeatureSampleObserver final : public FactorObserver {
 public:
  explicit FeatureSampleObserver(FeatureSampleOptions opts);
  bool wants(Site site, int64_t layer) const override;
  void observe(const Observation& o) override;
  void begin_batch(const BatchRows& rows) override;
  std::vector<FactorRecord> end_batch() override;
  void write_metadata(H5Writer& h5) const override;

 private:
  struct Store {
    std::string dataset;
    at::Tensor data;  // [n, ...] float32
    Combine combine;
  };
  const HeadSlots& slots_for(Site site) const { return site == Site::kKey ? opts_.kv_heads : opts_.heads; }
  FeatureSampleOptions opts_;
  PositionRows sampled_;  // the sampled positions of the batch, one record row each
  int64_t batch_ = 0;
  std::map<std::pair<Site, int64_t>, Store> store_;  // by (site, 0-based block)
};

}  // namespace lminf
