// Factor 2: the softmax entropy of every query's attention distribution, for chosen layers and heads,
// accumulated tile by tile (an online softmax, as in the attention kernels) beside the number of keys
// the query sees (log of which bounds the entropy).
//
// Per query row, over the key tiles seen so far, with m the running maximum logit:
//   l = sum_j exp(s_j - m),  a = sum_j exp(s_j - m) (s_j - m)
// A new tile with maximum m_t moves m to m' = max(m, m_t); with c = exp(m - m'):
//   l' = c l + sum_tile exp(s_j - m'),  a' = c (a + (m - m') l) + sum_tile exp(s_j - m') (s_j - m')
// and at the end H = -sum_j p_j log p_j = log l - a / l (p_j = exp(s_j - m) / l). Masked keys (-inf)
// contribute nothing. Keeping a relative to m avoids the cancellation of logsumexp - E_p[s].
#pragma once

#include <map>

#include "analysis/factors/factor_observer.h"

namespace lminf {

struct AttentionEntropyOptions : FactorSelection {
  int64_t max_length = 0;       // positions per record row: the longest sequence of the run
};

// Records, per layer l and recorded sequence (rows NaN / 0 past the sequence's end):
//   factor2/layer_LL/entropy       float32 [n, n_heads, max_length]  nats
//   factor2/layer_LL/visible_keys  int32   [n, n_heads, max_length]  keys with a finite logit
class AttentionEntropyObserver final : public LogitTileObserver {
 public:
  explicit AttentionEntropyObserver(AttentionEntropyOptions opts);
  void observe(const Observation& o) override;
  std::vector<FactorRecord> end_batch() override;
  void write_metadata(H5Writer& h5) const override;

 private:
  void start() override;
  struct State {
    at::Tensor m, l, a, n;     // [B, n_heads, max_length] float32
    std::vector<bool> owned;   // [n_heads]: a tile of this head was seen
  };
  AttentionEntropyOptions opts_;
  std::map<int64_t, State> state_;  // by layer
};

}  // namespace lminf
