#include "analysis/factors/feature_sample.h"

#include <algorithm>
#include <cstdio>
#include <limits>

#include "analysis/dump_schema.h"
#include "framework/core/error.h"

namespace lminf {

std::vector<int64_t> sampled_positions(int64_t length, int64_t first, int64_t stride) {
  std::vector<int64_t> out;
  for (int64_t p = 0; p < std::min(first, length); ++p) out.push_back(p);
  if (stride > 0)
    for (int64_t p = first; p < length; p += stride) out.push_back(p);
  return out;
}

FeatureSampleObserver::FeatureSampleObserver(FeatureSampleOptions opts) : opts_(std::move(opts)) {
  if (opts_.first < 0 || opts_.stride < 0) fail("FeatureSampleObserver: first and stride must be >= 0");
  for (int64_t i : opts_.hidden_states)
    if (i < 1) fail("FeatureSampleObserver: hidden_states index ", i, " (1 is the output of the first block)");
}

bool FeatureSampleObserver::wants(Site site, int64_t layer) const {
  switch (site) {
    case Site::kHidden:
      return has_layer(opts_.hidden_states, layer + 1);
    case Site::kQuery:
      return opts_.query && has_layer(opts_.layers, layer);
    case Site::kKey:
      return opts_.key && has_layer(opts_.layers, layer);
    case Site::kAttnOut:
      return opts_.attn_out && has_layer(opts_.layers, layer);
    default:
      return false;
  }
}

void FeatureSampleObserver::begin_batch(const BatchRows& rows) {
  batch_ = rows.size();
  sampled_.assign(rows, [&](int64_t length) { return sampled_positions(length, opts_.first, opts_.stride); });
  const int64_t n = sampled_.size(), D = opts_.head_dim;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  store_.clear();
  for (int64_t hs : opts_.hidden_states)
    store_[{Site::kHidden, hs - 1}] = {std::string(dump_schema::kHiddenGroup) + "/" + dump_schema::hidden_state_name(hs),
                                       at::zeros({n, opts_.hidden_size}, at::kFloat), Combine::kReplicated};
  for (int64_t layer : opts_.layers) {
    const std::string g = dump_schema::layer_group(layer);
    // Slots of heads a rank does not hold stay -inf, the identity of the max that combines ranks
    // (and keys of replicated key/value heads are equal on every rank that holds them).
    if (opts_.query)
      store_[{Site::kQuery, layer}] = {dump_schema::feature_site_group("query") + "/" + g, at::full({n, opts_.heads.size(), D}, neg_inf), Combine::kMax};
    if (opts_.key)
      store_[{Site::kKey, layer}] = {dump_schema::feature_site_group("key") + "/" + g, at::full({n, opts_.kv_heads.size(), D}, neg_inf), Combine::kMax};
    if (opts_.attn_out)
      store_[{Site::kAttnOut, layer}] = {dump_schema::feature_site_group("attn_out") + "/" + g, at::full({n, opts_.heads.size(), D}, neg_inf),
                                         Combine::kMax};
  }
}

void FeatureSampleObserver::observe(const Observation& o) {
  at::Tensor& store = batch_state(store_, {o.site, o.layer}, o, batch_, "FeatureSampleObserver").data;
  const int64_t B = o.data.size(0);
  const bool per_head = o.site != Site::kHidden;
  const int64_t T = per_head ? o.data.size(2) : o.data.size(1);
  HeadSlots::Local hl;
  if (per_head) {
    hl = slots_for(o.site).local(o.head_offset, o.data.size(1));
    if (hl.size() == 0) return;
  }
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> t_idx, r_idx;
    for (const auto& [p, r] : sampled_.by_batch_row[static_cast<size_t>(b)]) {
      if (p < o.q_start || p >= o.q_start + T) continue;
      t_idx.push_back(p - o.q_start);
      r_idx.push_back(r);
    }
    if (t_idx.empty()) continue;
    const at::Tensor t = at::tensor(t_idx, at::kLong), r = at::tensor(r_idx, at::kLong);
    if (!per_head) {
      store.index_copy_(0, r, o.data[b].index_select(0, t).to(at::kFloat));  // [m, hidden]
      continue;
    }
    at::Tensor x = o.data[b].index_select(0, hl.local).index_select(1, t).to(at::kFloat);  // [n, m, D]
    for (int64_t i = 0; i < hl.size(); ++i)
      store.select(1, hl.slots[i].item<int64_t>()).index_copy_(0, r, x[i]);
  }
}

std::vector<FactorRecord> FeatureSampleObserver::end_batch() {
  std::vector<FactorRecord> out;
  out.push_back({dump_schema::kSampleSequence, at::tensor(sampled_.sequence, at::kLong), Combine::kReplicated});
  out.push_back({dump_schema::kSamplePosition, at::tensor(sampled_.position, at::kLong), Combine::kReplicated});
  for (auto& [key, s] : store_) out.push_back({s.dataset, s.data.contiguous(), s.combine});
  store_.clear();
  return out;
}

void FeatureSampleObserver::write_metadata(H5Writer& h5) const {
  h5.create_group(dump_schema::kFactor3);
  h5.set_attr(dump_schema::kFactor3, "first", opts_.first);
  h5.set_attr(dump_schema::kFactor3, "stride", opts_.stride);
  h5.set_attr(dump_schema::kFactor3, "hidden_states", opts_.hidden_states);
  h5.set_attr(dump_schema::kFactor3, "layers", opts_.layers);
  h5.set_attr(dump_schema::kFactor3, "heads", opts_.heads.heads());
  h5.set_attr(dump_schema::kFactor3, "kv_heads", opts_.kv_heads.heads());
  h5.set_attr(dump_schema::kFactor3, "description",
              "hidden/hs_L: residual stream after decoder block L (1-based, Hugging Face hidden_states[L]); "
              "query, key: pre-RoPE per-head projections; attn_out: per-head attention output before o_proj");
}

}  // namespace lminf
