// Factor 1, chosen queries: the pre-softmax logits of chosen query positions against every earlier
// key, for chosen layers and heads, copied out of the kernels' tiles as they pass (the rows of the
// T x T matrix that are asked for, never the matrix).
//
// Chosen positions of a sequence of length L: query_stride 0 -> {L-1}; s > 0 -> {s-1, 2s-1, ...} below
// L, and L-1.
#pragma once

#include <map>
#include <utility>

#include "analysis/factors/factor_observer.h"

namespace lminf {

struct QueryLogitsOptions : FactorSelection {
  int64_t max_length = 0;       // keys per record row: the longest sequence of the run
  int64_t query_stride = 0;     // see above
};

// The chosen query positions of a sequence of `length` tokens (ascending).
std::vector<int64_t> chosen_queries(int64_t length, int64_t query_stride);

// Records, one row per chosen (sequence, query):
//   factor1/query_sequence           int64   [n]  sequence of the row
//   factor1/query_position           int64   [n]  position p of the query
//   factor1/layer_LL/query_logits    float32 [n, n_heads, max_length]  entry [r, h, j] is the scaled logit
//       of query p against key j: finite or -inf (masked, or never scored by the variant) for j <= p,
//       NaN for j > p.
class QueryLogitsObserver final : public LogitTileObserver {
 public:
  explicit QueryLogitsObserver(QueryLogitsOptions opts);
  void observe(const Observation& o) override;
  std::vector<FactorRecord> end_batch() override;
  void write_metadata(H5Writer& h5) const override;

 private:
  void start() override;
  struct State {
    at::Tensor logits;        // [n, n_heads, max_length] float32
    std::vector<bool> owned;  // [n_heads]
  };
  QueryLogitsOptions opts_;
  PositionRows chosen_;  // the chosen queries of the batch, one record row each
  std::map<int64_t, State> state_;
};

}  // namespace lminf
