#include "framework/transformer/kv_eviction.h"

#include "framework/core/error.h"

namespace lminf {

at::Tensor kept_entries(const at::Tensor& scores, int64_t n_head, int64_t keep, int64_t tail_start, int64_t size) {
  const int64_t B = scores.size(0), Hkv = scores.size(1);
  LMINF_CHECK(keep <= scores.size(2) && n_head + scores.size(2) <= tail_start && tail_start <= size,
              "kept_entries: keep ", keep, " of ", scores.size(2), " candidates, head ", n_head, ", tail from ",
              tail_start, " of ", size);
  const auto idx = scores.options().dtype(at::kLong);
  at::Tensor top = std::get<0>(std::get<1>(scores.topk(keep, -1)).sort(-1)) + n_head;  // [B, Hkv, keep]
  at::Tensor head = at::arange(0, n_head, idx).expand({B, Hkv, n_head});
  at::Tensor tail = at::arange(tail_start, size, idx).expand({B, Hkv, size - tail_start});
  return at::cat({head, top, tail}, -1);
}

at::Tensor pool_votes(const at::Tensor& votes, int64_t kernel_size, bool max_pool) {
  const int64_t pad = kernel_size / 2;
  if (max_pool) return at::max_pool1d(votes, {kernel_size}, {1}, {pad});
  return at::avg_pool1d(votes, {kernel_size}, {1}, {pad}, /*ceil_mode=*/false, /*count_include_pad=*/true);
}

H2OPolicy::H2OPolicy(const H2OOptions& o) : o_(o) {
  LMINF_CHECK(o_.hh_size >= 0 && o_.recent_size >= 1 && o_.n_head >= 0, "H2O: hh_size ", o_.hh_size,
              ", recent_size ", o_.recent_size, ", n_head ", o_.n_head);
}

std::string H2OPolicy::name() const {
  return "h2o(" + std::to_string(o_.n_head) + "+" + std::to_string(o_.hh_size) + "+" +
         std::to_string(o_.recent_size) + ")";
}

void H2OPolicy::trim(LayerCache& cache, const KeyMass& mass) const {
  LMINF_CHECK(mass.sum.defined(), "H2O: the attention variant reported no attention mass");
  cache.add_scores(mass.sum);
  const int64_t n = cache.size();
  if (n <= max_size()) return;
  const int64_t tail_start = n - o_.recent_size;
  at::Tensor candidates = cache.scores().narrow(2, o_.n_head, tail_start - o_.n_head);
  cache.keep_per_head(kept_entries(candidates, o_.n_head, o_.hh_size, tail_start, n));
}

SnapKVPolicy::SnapKVPolicy(const SnapKVOptions& o) : o_(o) {
  LMINF_CHECK(o_.window_size >= 1 && o_.max_capacity_prompt > o_.window_size && o_.kernel_size >= 1 &&
                  o_.kernel_size % 2 == 1 && o_.n_head >= 0,
              "SnapKV: window_size ", o_.window_size, ", max_capacity_prompt ", o_.max_capacity_prompt,
              ", kernel_size ", o_.kernel_size);
}

std::string SnapKVPolicy::name() const {
  return "snapkv(" + std::to_string(o_.n_head) + "+" + std::to_string(o_.max_capacity_prompt) + ", window " +
         std::to_string(o_.window_size) + ", " + (o_.max_pool ? "maxpool " : "avgpool ") +
         std::to_string(o_.kernel_size) + ")";
}

int64_t SnapKVPolicy::mass_rows(int64_t n_queries, int64_t n_keys) const {
  return n_queries >= o_.window_size && n_keys > o_.n_head + o_.max_capacity_prompt ? o_.window_size : 0;
}

void SnapKVPolicy::trim(LayerCache& cache, const KeyMass& mass) const {
  if (mass.rows == 0) return;  // a short call (decoding), or nothing to evict
  LMINF_CHECK(mass.sum.defined() && mass.rows == o_.window_size, "SnapKV: the attention variant reported no mass");
  const int64_t n = cache.size(), tail_start = n - o_.window_size;
  at::Tensor votes = mass.sum.narrow(2, o_.n_head, tail_start - o_.n_head);
  at::Tensor pooled = pool_votes(votes, o_.kernel_size, o_.max_pool);
  cache.keep_per_head(kept_entries(pooled, o_.n_head, o_.max_capacity_prompt - o_.window_size, tail_start, n));
}

int64_t SnapKVPolicy::max_size_for_chunks(int64_t chunk) const {
  return chunk >= o_.window_size ? o_.n_head + o_.max_capacity_prompt : -1;
}

}  // namespace lminf
