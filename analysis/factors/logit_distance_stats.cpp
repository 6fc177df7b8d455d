#include "analysis/factors/logit_distance_stats.h"

#include <algorithm>
#include <limits>

#include "analysis/dump_schema.h"
#include "framework/core/error.h"
#include <torch/version.h>

namespace lminf {
namespace {

// libtorch 1.13 prints "scatter_reduce() is in beta" once per process; the call is stable for our use
// (amax with include_self), so that one warning is dropped there. libtorch 2.x prints nothing (and
// changed the warning-handler interface).
#if TORCH_VERSION_MAJOR < 2
class DropWarnings : public c10::WarningHandler {
 public:
  void process(const c10::SourceLocation&, const std::string&, const bool) override {}
};
#endif

at::Tensor scatter_amax(const at::Tensor& self, const at::Tensor& index, const at::Tensor& src) {
#if TORCH_VERSION_MAJOR < 2
  DropWarnings drop;
  c10::Warning::WarningHandlerGuard guard(&drop);
#endif
  return self.scatter_reduce(2, index, src, "amax", /*include_self=*/true);
}

}  // namespace

std::vector<int64_t> uniform_distance_edges(int64_t width, int64_t max_length) {
  if (width <= 0) fail("distance bucket width must be > 0, got ", width);
  std::vector<int64_t> edges{0};
  while (edges.back() < max_length) edges.push_back(edges.back() + width);
  if (edges.size() < 2) edges.push_back(width);
  return edges;
}

LogitDistanceObserver::LogitDistanceObserver(LogitDistanceOptions opts) : LogitTileObserver(opts.layers), opts_(std::move(opts)) {
  const auto& e = opts_.edges;
  if (e.size() < 2) fail("distance edges: need at least two edges (one bucket), got ", e.size());
  if (e[0] < 0) fail("distance edges: the first edge must be >= 0, got ", e[0]);
  for (size_t i = 1; i < e.size(); ++i)
    if (e[i] <= e[i - 1]) fail("distance edges must increase strictly: ", e[i - 1], " then ", e[i]);
  edges_ = at::tensor(e, at::kLong);
  const int64_t S = opts_.heads.size(), nb = static_cast<int64_t>(e.size()) - 1;
  for (int64_t layer : opts_.layers) {
    Run& r = run_[layer];
    r.max = at::full({S, nb}, -std::numeric_limits<float>::infinity(), at::kFloat);
    r.sum = at::zeros({S, nb}, at::kDouble);
    r.count = at::zeros({S, nb}, at::kLong);
    r.owned.assign(static_cast<size_t>(S), false);
  }
}

void LogitDistanceObserver::start() {
  const BatchRows& rows = rows_;
  std::vector<int64_t> len(rows.sequence.size());
  for (size_t b = 0; b < len.size(); ++b) len[b] = rows.sequence[b] >= 0 ? rows.length[b] : 0;
  length_ = at::tensor(len, at::kLong).unsqueeze(1);
  const int64_t B = rows.size(), S = opts_.heads.size(), nb1 = edges_.size(0);
  state_.clear();
  for (int64_t layer : opts_.layers) {
    State& st = state_[layer];
    st.max = at::full({B, S, nb1}, -std::numeric_limits<float>::infinity(), at::kFloat);
    st.sum = at::zeros({B, S, nb1}, at::kDouble);
    st.count = at::zeros({B, S, nb1}, at::kLong);
    st.owned.assign(static_cast<size_t>(S), false);
  }
}

void LogitDistanceObserver::observe(const Observation& o) {
  State& st = batch_state(state_, o.layer, o, rows_.size(), "LogitDistanceObserver");
  const int64_t B = o.data.size(0), Hl = o.data.size(1), bq = o.data.size(2), bk = o.data.size(3);
  const HeadSlots::Local hl = opts_.heads.local(o.head_offset, Hl);
  if (hl.size() == 0) return;
  hl.mark(st.owned);
  const int64_t n = hl.size(), nb = edges_.size(0) - 1;

  // s: [B, n, bq, bk]; entries that do not count (masked keys, padding queries) become -inf / 0.
  at::Tensor s = o.data.index_select(1, hl.local).to(at::kFloat);
  at::Tensor qpos = at::arange(o.q_start, o.q_start + bq, at::kLong);
  at::Tensor real_q = (qpos.unsqueeze(0) < length_).view({B, 1, bq, 1});
  if (!real_q.all().item<bool>()) s = s.masked_fill(real_q.logical_not(), -std::numeric_limits<float>::infinity());
  at::Tensor valid = at::isfinite(s);

  // Per distance first: skewing row i right by (bq - 1 - i) puts every entry of distance
  // d = (q_start - k_start) + (bq - 1) - c into column c, so one reduction over rows gives the
  // tile's max / sum / count per distance, W = bq + bk - 1 distances.
  const int64_t BN = B * n, W = bq + bk - 1, Wp = W + 1;
  auto per_distance = [&](const at::Tensor& x, float fill, bool max) {
    at::Tensor buf = at::full({BN, bq, Wp}, fill, at::kFloat);
    buf.as_strided({BN, bq, bk}, {bq * Wp, Wp - 1, 1}, buf.storage_offset() + bq - 1).copy_(x.reshape({BN, bq, bk}));
    at::Tensor r = max ? buf.amax(1) : buf.sum(1);  // [BN, Wp]
    return r.narrow(1, 0, W).view({B, n, W});
  };
  at::Tensor d_max = per_distance(s, -std::numeric_limits<float>::infinity(), true);
  at::Tensor d_sum = per_distance(at::where(valid, s, at::zeros_like(s)), 0.f, false);
  at::Tensor d_cnt = per_distance(valid.to(at::kFloat), 0.f, false);

  // Then per bucket: column c has distance d_c; distances outside the edges go to the left-out slot nb.
  at::Tensor d_c = (o.q_start - o.k_start + bq - 1) - at::arange(W, at::kLong);
  at::Tensor bucket = at::bucketize(d_c, edges_, /*out_int32=*/false, /*right=*/true) - 1;
  bucket = at::where(bucket < 0, at::full_like(bucket, nb), bucket).view({1, 1, W}).expand({B, n, W}).contiguous();
  at::Tensor mx = scatter_amax(st.max.index_select(1, hl.slots), bucket, d_max);
  at::Tensor sm = at::zeros({B, n, nb + 1}, at::kFloat).scatter_add_(2, bucket, d_sum);
  at::Tensor ct = at::zeros({B, n, nb + 1}, at::kFloat).scatter_add_(2, bucket, d_cnt);
  st.max.index_copy_(1, hl.slots, mx);
  st.sum.index_copy_(1, hl.slots, st.sum.index_select(1, hl.slots) + sm.to(at::kDouble));
  st.count.index_copy_(1, hl.slots, st.count.index_select(1, hl.slots) + ct.round().to(at::kLong));
}

std::vector<FactorRecord> LogitDistanceObserver::end_batch() {
  const at::Tensor rec = rows_.recorded();
  const int64_t nb = edges_.size(0) - 1;
  std::vector<FactorRecord> out;
  for (int64_t layer : opts_.layers) {
    State& st = state_.at(layer);
    // Slots of heads never seen hold -inf / 0 / 0: the identities of max and sum.
    at::Tensor mx = st.max.narrow(2, 0, nb).index_select(0, rec).contiguous();
    at::Tensor sm = st.sum.narrow(2, 0, nb).index_select(0, rec).contiguous();
    at::Tensor ct = st.count.narrow(2, 0, nb).index_select(0, rec).contiguous();
    Run& r = run_.at(layer);
    if (rec.size(0) > 0) {
      r.max = at::maximum(r.max, std::get<0>(mx.max(0)));
      r.sum += sm.sum(0);
      r.count += ct.sum(0);
    }
    for (size_t h = 0; h < st.owned.size(); ++h) r.owned[h] = r.owned[h] || st.owned[h];
    const std::string g = dump_schema::layer_prefix(dump_schema::kFactor1, layer);
    out.push_back({g + "bucket_max", mx, Combine::kMax});
    out.push_back({g + "bucket_sum", sm, Combine::kSum});
    out.push_back({g + "bucket_count", ct, Combine::kSum});
  }
  state_.clear();
  return out;
}

std::vector<FactorRecord> LogitDistanceObserver::finish() {
  std::vector<FactorRecord> out;
  for (int64_t layer : opts_.layers) {
    const Run& r = run_.at(layer);
    at::Tensor mean = r.sum / r.count.to(at::kDouble);  // NaN where empty
    for (size_t h = 0; h < r.owned.size(); ++h)
      if (!r.owned[h]) mean.select(0, static_cast<int64_t>(h)).zero_();
    const std::string g = dump_schema::layer_prefix(dump_schema::kFactor1, layer);
    out.push_back({g + "run_max", r.max.contiguous(), Combine::kMax});
    out.push_back({g + "run_mean", mean.contiguous(), Combine::kSum});
    out.push_back({g + "run_count", r.count.contiguous(), Combine::kSum});
  }
  return out;
}

void LogitDistanceObserver::write_metadata(H5Writer& h5) const {
  write_selection(h5, dump_schema::kFactor1, opts_);
  h5.write(dump_schema::kDistanceEdges, edges_);
}

}  // namespace lminf
