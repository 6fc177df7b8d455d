#include "analysis/factors/factor_observer.h"

#include <algorithm>
#include <cstdio>

#include "analysis/dump_schema.h"
#include "framework/core/error.h"

namespace lminf {

at::Tensor BatchRows::recorded() const {
  std::vector<int64_t> idx;
  for (size_t b = 0; b < sequence.size(); ++b)
    if (sequence[b] >= 0) idx.push_back(static_cast<int64_t>(b));
  return at::tensor(idx, at::kLong);
}

at::Tensor BatchRows::real_positions(int64_t T) const {
  std::vector<int64_t> len(sequence.size());
  for (size_t b = 0; b < sequence.size(); ++b) len[b] = sequence[b] >= 0 ? length[b] : 0;
  return at::arange(T, at::kLong).unsqueeze(0) < at::tensor(len, at::kLong).unsqueeze(1);
}

void PositionRows::assign(const BatchRows& rows,
                          const std::function<std::vector<int64_t>(int64_t length)>& positions) {
  by_batch_row.assign(static_cast<size_t>(rows.size()), {});
  sequence.clear();
  position.clear();
  for (int64_t b = 0; b < rows.size(); ++b) {
    const size_t bi = static_cast<size_t>(b);
    if (rows.sequence[bi] < 0) continue;
    for (int64_t p : positions(rows.length[bi])) {
      by_batch_row[bi].emplace_back(p, size());
      sequence.push_back(rows.sequence[bi]);
      position.push_back(p);
    }
  }
}

HeadSlots::HeadSlots(std::vector<int64_t> heads, int64_t n_head) : slot_of_(static_cast<size_t>(n_head), -1) {
  if (heads.empty())
    for (int64_t h = 0; h < n_head; ++h) heads.push_back(h);
  heads_ = std::move(heads);
  for (size_t i = 0; i < heads_.size(); ++i) {
    const int64_t h = heads_[i];
    if (h < 0 || h >= n_head) fail("head ", h, " does not exist (the model has ", n_head, " heads: 0..", n_head - 1, ")");
    if (slot_of_[static_cast<size_t>(h)] >= 0) fail("head ", h, " is listed twice");
    slot_of_[static_cast<size_t>(h)] = static_cast<int64_t>(i);
  }
}

int64_t HeadSlots::slot(int64_t global_head) const {
  if (global_head < 0 || global_head >= static_cast<int64_t>(slot_of_.size())) return -1;
  return slot_of_[static_cast<size_t>(global_head)];
}

HeadSlots::Local HeadSlots::local(int64_t head_offset, int64_t n_local) const {
  std::vector<int64_t> local, slots;
  for (int64_t i = 0; i < n_local; ++i) {
    const int64_t s = slot(head_offset + i);
    if (s < 0) continue;
    local.push_back(i);
    slots.push_back(s);
  }
  return {at::tensor(local, at::kLong), at::tensor(slots, at::kLong)};
}

void HeadSlots::Local::mark(std::vector<bool>& owned) const {
  for (int64_t i = 0; i < size(); ++i) owned[static_cast<size_t>(slots[i].item<int64_t>())] = true;
}

void LogitTileObserver::write_selection(H5Writer& h5, const std::string& group, const FactorSelection& s) {
  h5.create_group(group);
  h5.set_attr(group, "layers", s.layers);
  h5.set_attr(group, "heads", s.heads.heads());
}

void LogitTileObserver::zero_unowned(at::Tensor& t, const std::vector<bool>& owned) {
  for (size_t s = 0; s < owned.size(); ++s)
    if (!owned[s]) t.select(1, static_cast<int64_t>(s)).zero_();
}

bool has_layer(const std::vector<int64_t>& layers, int64_t layer) {
  return std::find(layers.begin(), layers.end(), layer) != layers.end();
}

bool LogitTileObserver::wants(Site site, int64_t layer) const {
  return site == Site::kAttnLogits && has_layer(layers_, layer);
}

void LogitTileObserver::begin_batch(const BatchRows& rows) {
  rows_ = rows;
  start();
}

}  // namespace lminf
