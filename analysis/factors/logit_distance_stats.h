// Factor 1, all queries: the maximum and mean pre-softmax logit per relative-distance bucket, for
// chosen layers and heads, per sequence and over the whole run. Computed tile by tile: each entry of
// a tile has distance d = (q_start + i) - (k_start + j); bucket b holds d in [edges[b], edges[b+1]).
// Masked entries (-inf), padding queries and distances outside [edges.front(), edges.back()) are
// left out.
#pragma once

#include <map>

#include "analysis/factors/factor_observer.h"

namespace lminf {

struct LogitDistanceOptions : FactorSelection {
  std::vector<int64_t> edges;   // strictly increasing bucket edges, edges[0] >= 0; n_buckets = size - 1
};

// Uniform edges 0, width, 2 width, ..., up to and including the first edge >= max_length.
std::vector<int64_t> uniform_distance_edges(int64_t width, int64_t max_length);

// Records, per layer l (heads in slot order, buckets as the edges):
//   per recorded sequence (appended):
//     factor1/layer_LL/bucket_max    float32 [n, n_heads, n_buckets]  -inf where the bucket is empty
//     factor1/layer_LL/bucket_sum    float64 [n, n_heads, n_buckets]
//     factor1/layer_LL/bucket_count  int64   [n, n_heads, n_buckets]
//   over the run (finish()):
//     factor1/layer_LL/run_max       float32 [n_heads, n_buckets]
//     factor1/layer_LL/run_mean      float64 [n_heads, n_buckets]     NaN where the bucket is empty
//     factor1/layer_LL/run_count     int64   [n_heads, n_buckets]
class LogitDistanceObserver final : public LogitTileObserver {
 public:
  explicit LogitDistanceObserver(LogitDistanceOptions opts);
  void observe(const Observation& o) override;
  std::vector<FactorRecord> end_batch() override;
  std::vector<FactorRecord> finish() override;
  void write_metadata(H5Writer& h5) const override;

 private:
  void start() override;
  struct State {
    at::Tensor max, sum, count;  // [B, n_heads, n_buckets + 1]; the last bucket collects what is left out
    std::vector<bool> owned;     // [n_heads]
  };
  struct Run {
    at::Tensor max, sum, count;  // [n_heads, n_buckets]
    std::vector<bool> owned;
  };
  LogitDistanceOptions opts_;
  at::Tensor edges_;  // int64 [n_buckets + 1]
  at::Tensor length_;  // int64 [B, 1]: real tokens of each row, 0 for rows not recorded
  std::map<int64_t, State> state_;
  std::map<int64_t, Run> run_;
};

}  // namespace lminf
