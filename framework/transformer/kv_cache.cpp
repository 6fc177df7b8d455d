#include "framework/transformer/kv_cache.h"

#include <algorithm>

#include "framework/core/error.h"
#include "framework/transformer/rope.h"

namespace lminf {

void LayerCache::reserve(int64_t n) {
  if (n <= capacity()) return;
  const int64_t cap = std::max<int64_t>(n, std::max<int64_t>(64, capacity() * 2));
  auto grow = [&](const at::Tensor& old) {
    std::vector<int64_t> shape = old.sizes().vec();
    shape[2] = cap;
    at::Tensor t = at::empty(shape, old.options());
    if (len_ > 0) t.narrow(2, 0, len_).copy_(old.narrow(2, 0, len_));
    return t;
  };
  k_ = grow(k_);
  v_ = grow(v_);
  if (s_.defined()) s_ = grow(s_);  // [B, Hkv, capacity]: the same axis 2
  rk_ = at::Tensor();                // rebuilt at the new capacity when next asked
  rotated_ = 0;
}

at::Tensor LayerCache::rotated_keys(const RotaryEmbedding& rope) {
  LMINF_CHECK(!rope.length_dependent(), "rotated_keys with a length-dependent rotary embedding");
  LMINF_CHECK(k_.defined(), "rotated_keys of an empty cache");
  if (&rope != rope_ || !rk_.defined()) {
    rope_ = &rope;
    rotated_ = 0;
    if (!rk_.defined() || !rk_.sizes().equals(k_.sizes())) rk_ = at::empty_like(k_);
  }
  if (rotated_ < len_) {
    const int64_t n = len_ - rotated_;
    at::Tensor pos = at::arange(rotated_, len_, k_.options().dtype(at::kLong));
    auto cs = rope.cos_sin(pos, len_);
    rk_.narrow(2, rotated_, n).copy_(rope.apply_rotation(k_.narrow(2, rotated_, n), cs.first, cs.second));
    rotated_ = len_;
  }
  return rk_.narrow(2, 0, len_);
}

void LayerCache::append(const at::Tensor& k_new, const at::Tensor& v_new) {
  if (!k_.defined()) {
    std::vector<int64_t> shape = k_new.sizes().vec();
    shape[2] = std::max<int64_t>(64, shape[2]);
    k_ = at::empty(shape, k_new.options());
    shape = v_new.sizes().vec();
    shape[2] = std::max<int64_t>(64, shape[2]);
    v_ = at::empty(shape, v_new.options());
  } else if (k_new.size(0) != k_.size(0) || k_new.size(1) != k_.size(1) || k_new.size(3) != k_.size(3)) {
    fail("KV cache: appended keys ", k_new.sizes(), " do not match the cache ", k_.sizes());
  }
  const int64_t t = k_new.size(2);
  reserve(len_ + t);
  k_.narrow(2, len_, t).copy_(k_new);
  v_.narrow(2, len_, t).copy_(v_new);
  if (s_.defined()) s_.narrow(2, len_, t).zero_();
  len_ += t;
}

at::Tensor LayerCache::keys() const { return k_.narrow(2, 0, len_); }
at::Tensor LayerCache::values() const { return v_.narrow(2, 0, len_); }
int64_t LayerCache::bytes() const {
  int64_t b = 0;
  for (const at::Tensor* t : {&k_, &v_, &s_, &rk_})
    if (t->defined()) b += static_cast<int64_t>(t->nbytes());
  return b;
}

at::Tensor LayerCache::scores() const { return s_.defined() ? s_.narrow(2, 0, len_) : at::Tensor(); }

void LayerCache::add_scores(const at::Tensor& mass) {
  LMINF_CHECK(k_.defined() && mass.dim() == 3 && mass.size(0) == k_.size(0) && mass.size(1) == k_.size(1) &&
                  mass.size(2) == len_,
              "KV cache: attention mass ", mass.sizes(), " does not match ", len_, " entries");
  if (!s_.defined()) {
    const auto t = k_.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    s_ = at::zeros({k_.size(0), k_.size(1), k_.size(2)}, k_.options().dtype(t));
  }
  s_.narrow(2, 0, len_).add_(mass.to(s_.scalar_type()));
}

void LayerCache::keep_per_head(const at::Tensor& idx) {
  const int64_t n = idx.size(2);
  LMINF_CHECK(idx.dim() == 3 && n <= len_, "KV cache: keep_per_head of ", idx.sizes(), " in ", len_, " entries");
  const at::Tensor i = idx.to(k_.device(), at::kLong);
  auto keep = [&](at::Tensor& buf) {
    const at::Tensor live = buf.narrow(2, 0, len_);
    const at::Tensor ix = buf.dim() == 4 ? i.unsqueeze(-1).expand({i.size(0), i.size(1), n, buf.size(3)}) : i;
    buf.narrow(2, 0, n).copy_(at::gather(live, 2, ix));  // gather makes a new tensor: no overlap
  };
  keep(k_);
  keep(v_);
  if (s_.defined()) keep(s_);
  len_ = n;
  drop_rotated();
}

void LayerCache::keep_head_and_tail(int64_t n_head, int64_t n_tail) {
  if (n_head + n_tail >= len_) return;
  // Move the tail down to follow the head (clone: the ranges may overlap).
  k_.narrow(2, n_head, n_tail).copy_(k_.narrow(2, len_ - n_tail, n_tail).clone());
  v_.narrow(2, n_head, n_tail).copy_(v_.narrow(2, len_ - n_tail, n_tail).clone());
  if (s_.defined()) s_.narrow(2, n_head, n_tail).copy_(s_.narrow(2, len_ - n_tail, n_tail).clone());
  len_ = n_head + n_tail;
  drop_rotated();
}

std::string HeadTailPolicy::name() const {
  return "head_tail(" + std::to_string(n_head_) + "+" + std::to_string(n_tail_) + ")";
}

void HeadTailPolicy::trim(LayerCache& cache, const KeyMass&) const { cache.keep_head_and_tail(n_head_, n_tail_); }

KVCache::KVCache(int64_t n_layer, std::shared_ptr<const CachePolicy> policy)
    : layers_(static_cast<size_t>(n_layer)), policy_(std::move(policy)) {
  if (!policy_) policy_ = std::make_shared<KeepAllPolicy>();
}

void KVCache::clear() {
  for (auto& l : layers_) l.clear();
  n_fed_ = 0;
}

int64_t KVCache::bytes() const {
  int64_t b = 0;
  for (const auto& l : layers_) b += l.bytes();
  return b;
}

}  // namespace lminf
