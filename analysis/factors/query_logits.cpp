#include "analysis/factors/query_logits.h"

#include <algorithm>
#include <limits>

#include "analysis/dump_schema.h"
#include "framework/core/error.h"

namespace lminf {

std::vector<int64_t> chosen_queries(int64_t length, int64_t query_stride) {
  std::vector<int64_t> out;
  if (length <= 0) return out;
  if (query_stride > 0)
    for (int64_t p = query_stride - 1; p < length - 1; p += query_stride) out.push_back(p);
  out.push_back(length - 1);
  return out;
}

QueryLogitsObserver::QueryLogitsObserver(QueryLogitsOptions opts) : LogitTileObserver(opts.layers), opts_(std::move(opts)) {
  if (opts_.max_length <= 0) fail("QueryLogitsObserver: max_length must be > 0");
  if (opts_.query_stride < 0) fail("QueryLogitsObserver: query_stride must be >= 0");
}

void QueryLogitsObserver::start() {
  const BatchRows& rows = rows_;
  chosen_.assign(rows, [&](int64_t length) {
    return chosen_queries(std::min(length, opts_.max_length), opts_.query_stride);
  });
  const int64_t n = chosen_.size(), S = opts_.heads.size();
  state_.clear();
  for (int64_t layer : opts_.layers) {
    State& st = state_[layer];
    st.logits = at::full({n, S, opts_.max_length}, std::numeric_limits<float>::quiet_NaN(), at::kFloat);
    st.owned.assign(static_cast<size_t>(S), false);
  }
}

void QueryLogitsObserver::observe(const Observation& o) {
  State& st = batch_state(state_, o.layer, o, rows_.size(), "QueryLogitsObserver");
  const int64_t B = o.data.size(0), Hl = o.data.size(1), bq = o.data.size(2), bk = o.data.size(3);
  const int64_t nk = std::min(bk, opts_.max_length - o.k_start);
  if (nk <= 0) return;
  HeadSlots::Local hl;
  bool have_heads = false;
  for (int64_t b = 0; b < B; ++b) {
    for (const auto& [p, r] : chosen_.by_batch_row[static_cast<size_t>(b)]) {
      if (p < o.q_start || p >= o.q_start + bq) continue;
      if (!have_heads) {
        hl = opts_.heads.local(o.head_offset, Hl);
        have_heads = true;
        hl.mark(st.owned);
      }
      if (hl.size() == 0) return;
      // [n_local, nk] logits of query p against keys k_start.. of the recorded local heads. A variant
      // may report a key in several tiles, finite in exactly one and -inf in the others (two-branch
      // kernels), so tiles merge by fmax: NaN (not yet seen) < -inf < any finite logit.
      at::Tensor row = o.data[b].index_select(0, hl.local).select(1, p - o.q_start).narrow(1, 0, nk).to(at::kFloat);
      at::Tensor dst = st.logits[r].narrow(1, o.k_start, nk);
      dst.index_copy_(0, hl.slots, at::fmax(dst.index_select(0, hl.slots), row));
    }
  }
}

std::vector<FactorRecord> QueryLogitsObserver::end_batch() {
  std::vector<FactorRecord> out;
  const int64_t T = opts_.max_length;
  const float nan = std::numeric_limits<float>::quiet_NaN(), neg_inf = -std::numeric_limits<float>::infinity();
  for (int64_t layer : opts_.layers) {
    State& st = state_.at(layer);
    for (size_t r = 0; r < chosen_.position.size(); ++r) {
      const int64_t p = chosen_.position[r];
      at::Tensor row = st.logits[static_cast<int64_t>(r)];  // [S, T]
      at::Tensor earlier = row.narrow(1, 0, p + 1);
      earlier.masked_fill_(at::isnan(earlier), neg_inf);   // keys the variant never scored: not seen
      if (p + 1 < T) row.narrow(1, p + 1, T - p - 1).fill_(nan);
    }
    zero_unowned(st.logits, st.owned);
    out.push_back({dump_schema::query_logits(layer), st.logits.contiguous(), Combine::kSum});
  }
  out.push_back({dump_schema::kQuerySequence, at::tensor(chosen_.sequence, at::kLong), Combine::kReplicated});
  out.push_back({dump_schema::kQueryPosition, at::tensor(chosen_.position, at::kLong), Combine::kReplicated});
  state_.clear();
  return out;
}

void QueryLogitsObserver::write_metadata(H5Writer& h5) const {
  write_selection(h5, dump_schema::kFactor1, opts_);
  h5.set_attr(dump_schema::kFactor1, "query_stride", opts_.query_stride);
}

}  // namespace lminf
