#include "analysis/factors/attention_entropy.h"

#include <algorithm>
#include <limits>

#include "analysis/dump_schema.h"
#include "framework/core/error.h"

namespace lminf {

AttentionEntropyObserver::AttentionEntropyObserver(AttentionEntropyOptions opts) : LogitTileObserver(opts.layers), opts_(std::move(opts)) {
  if (opts_.max_length <= 0) fail("AttentionEntropyObserver: max_length must be > 0");
}

void AttentionEntropyObserver::start() {
  const BatchRows& rows = rows_;
  state_.clear();
  const int64_t B = rows.size(), S = opts_.heads.size(), T = opts_.max_length;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (int64_t layer : opts_.layers) {
    State& st = state_[layer];
    st.m = at::full({B, S, T}, neg_inf, at::kFloat);
    st.l = at::zeros({B, S, T}, at::kFloat);
    st.a = at::zeros({B, S, T}, at::kFloat);
    st.n = at::zeros({B, S, T}, at::kFloat);
    st.owned.assign(static_cast<size_t>(S), false);
  }
}

void AttentionEntropyObserver::observe(const Observation& o) {
  State& st = batch_state(state_, o.layer, o, rows_.size(), "AttentionEntropyObserver");
  const int64_t Hl = o.data.size(1), bq = o.data.size(2);
  const int64_t q0 = o.q_start, nq = std::min(bq, opts_.max_length - q0);
  if (nq <= 0) return;  // queries past every recorded position
  const HeadSlots::Local hl = opts_.heads.local(o.head_offset, Hl);
  if (hl.size() == 0) return;
  hl.mark(st.owned);

  // s: [B, n, nq, bk] float32, masked entries -inf.
  at::Tensor s = o.data.index_select(1, hl.local).narrow(2, 0, nq).to(at::kFloat);
  auto cols = [&](at::Tensor& t) { return t.narrow(2, q0, nq); };  // [B, S, nq] views
  at::Tensor m = cols(st.m).index_select(1, hl.slots);
  at::Tensor l = cols(st.l).index_select(1, hl.slots);
  at::Tensor a = cols(st.a).index_select(1, hl.slots);
  at::Tensor n = cols(st.n).index_select(1, hl.slots);

  at::Tensor m_new = at::maximum(m, std::get<0>(s.max(-1)));
  // Rows with no finite logit yet keep m = -inf; shift them by 0 so exp() gives 0, not NaN.
  at::Tensor m_safe = at::where(at::isinf(m_new), at::zeros_like(m_new), m_new);
  at::Tensor finite = at::isfinite(s);
  at::Tensor rel = s - m_safe.unsqueeze(-1);                         // -inf where masked
  at::Tensor p = at::exp(rel);                                       // 0 where masked
  at::Tensor pr = at::where(finite, p * rel, at::zeros_like(p));     // p (s - m'), 0 where masked
  at::Tensor shift = at::where(at::isinf(m), at::zeros_like(m), m - m_safe);  // m - m' (0 while l = 0)
  at::Tensor c = at::exp(m - m_safe);
  at::Tensor l_new = c * l + p.sum(-1);
  at::Tensor a_new = c * (a + shift * l) + pr.sum(-1);
  at::Tensor n_new = n + finite.sum(-1).to(at::kFloat);

  cols(st.m).index_copy_(1, hl.slots, m_new);
  cols(st.l).index_copy_(1, hl.slots, l_new);
  cols(st.a).index_copy_(1, hl.slots, a_new);
  cols(st.n).index_copy_(1, hl.slots, n_new);
}

std::vector<FactorRecord> AttentionEntropyObserver::end_batch() {
  const at::Tensor rec = rows_.recorded();
  const int64_t T = opts_.max_length;
  // [n, 1, T]: real positions of the recorded rows.
  const at::Tensor real = rows_.real_positions(T).index_select(0, rec).unsqueeze(1);
  std::vector<FactorRecord> out;
  for (int64_t layer : opts_.layers) {
    State& st = state_.at(layer);
    at::Tensor l = st.l.index_select(0, rec), a = st.a.index_select(0, rec);
    at::Tensor entropy = at::log(l) - a / l;
    at::Tensor visible = st.n.index_select(0, rec);
    entropy = at::where(real, entropy, at::full_like(entropy, std::numeric_limits<float>::quiet_NaN()));
    visible = at::where(real, visible, at::zeros_like(visible));
    // Slots of heads this rank never saw: the identity of the sum that combines ranks.
    zero_unowned(entropy, st.owned);
    zero_unowned(visible, st.owned);
    const std::string g = dump_schema::layer_prefix(dump_schema::kFactor2, layer);
    out.push_back({g + "entropy", entropy.contiguous(), Combine::kSum});
    out.push_back({g + "visible_keys", visible.to(at::kInt).contiguous(), Combine::kSum});
  }
  state_.clear();
  return out;
}

void AttentionEntropyObserver::write_metadata(H5Writer& h5) const {
  write_selection(h5, dump_schema::kFactor2, opts_);
  h5.set_attr(dump_schema::kFactor2, "description",
              "per-query softmax attention entropy (nats) and the number of keys with a finite logit; "
              "the entropy is at most log(visible_keys)");
}

}  // namespace lminf
