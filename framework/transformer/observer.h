// Observers: two-phase hooks ("do you want site S at layer l?", then the data), so a run with no
// observer pays nothing. Kernels hand observers per-block attention logits, so statistics over long
// sequences never need a T x T matrix.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <vector>

namespace lminf {

enum class Site {
  kAttnLogits,  // scaled pre-softmax logits of one (query block, key block) tile, masked entries -inf
  kHidden,      // residual stream after a layer: [B, T, hidden]
  kQuery,       // per-head pre-RoPE queries: [B, H_local, T, D]
  kKey,         // per-head pre-RoPE keys of this call: [B, Hkv_local, T, D]
  kAttnOut,     // per-head attention output: [B, H_local, T, D]
};

struct Observation {
  Site site;
  int64_t layer = 0;
  at::Tensor data;        // see Site for the shape; attention tiles are [B, H_local, bq, bk] float32
  int64_t q_start = 0;    // absolute position of the first query row (tiles) or first token (others)
  int64_t k_start = 0;    // absolute position of the first key column (tiles)
  int64_t head_offset = 0;  // first global head index held here (tensor parallelism)
};

class Observer {
 public:
  virtual ~Observer() = default;
  virtual bool wants(Site site, int64_t layer) const = 0;
  virtual void observe(const Observation& o) = 0;
};

// The observers attached to a run; empty by default.
class ObserverSet {
 public:
  void add(std::shared_ptr<Observer> o) { observers_.push_back(std::move(o)); }
  bool empty() const { return observers_.empty(); }
  bool wants(Site site, int64_t layer) const {
    for (const auto& o : observers_)
      if (o->wants(site, layer)) return true;
    return false;
  }
  void emit(const Observation& obs) const {
    for (const auto& o : observers_)
      if (o->wants(obs.site, obs.layer)) o->observe(obs);
  }

 private:
  std::vector<std::shared_ptr<Observer>> observers_;
};

}  // namespace lminf
