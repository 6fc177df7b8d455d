// Factor observers: Observers that turn what a forward call reports (attention logit tiles, hidden
// states, per-head queries/keys/outputs) into rows of a dump, one row per recorded sequence.
//
// The life of a batch: begin_batch(rows) says which sequence each batch row holds and how many of its
// positions are real (the rest is padding); the forward calls then report through observe(); and
// end_batch() returns the finished rows. Everything is computed tile by tile from the Observation
// contract of framework/transformer/observer.h, so any attention variant that reports its tiles with absolute
// positions is covered, and no observer ever holds a T x T matrix. Within one forward call a visible
// (query, key) pair must have a finite logit in exactly one tile; a key may appear -inf (masked) in
// other tiles (two-branch kernels such as lambda attention report far and near tiles).
//
// Tensor parallelism: a rank sees only its own heads (Observation::head_offset gives the global index
// of its first one). Observers index heads by their slot in the GLOBAL head selection and fill the
// slots of heads they never saw with the identity of the record's Combine, so combining the records
// of all tensor-parallel ranks slot-wise (sum, or max) gives the full record on every rank.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "analysis/dump_schema.h"
#include "framework/core/error.h"
#include "framework/io/h5_file.h"
#include "framework/transformer/observer.h"

namespace lminf {

// What the rows of the next forward calls hold.
struct BatchRows {
  std::vector<int64_t> sequence;  // [B] index of the sequence in row b; -1: row not recorded
  std::vector<int64_t> length;    // [B] real tokens of row b; positions >= length[b] are padding
  int64_t size() const { return static_cast<int64_t>(sequence.size()); }
  // int64 [n_recorded]: the batch indices of the recorded rows, in batch order.
  at::Tensor recorded() const;
  // bool [B, T]: position p of row b is real (p < length[b]) and the row is recorded.
  at::Tensor real_positions(int64_t T) const;
};

// The record rows of a batch that keep chosen positions of each recorded sequence: one row per
// (recorded batch row b, position p), numbered in batch order.
struct PositionRows {
  std::vector<std::vector<std::pair<int64_t, int64_t>>> by_batch_row;  // [B] -> (position p, record row)
  std::vector<int64_t> sequence, position;                             // [n] per record row
  int64_t size() const { return static_cast<int64_t>(sequence.size()); }
  // positions(length): the chosen positions (ascending) of a sequence with `length` real tokens.
  void assign(const BatchRows& rows, const std::function<std::vector<int64_t>(int64_t length)>& positions);
};

// How the records of tensor-parallel ranks are combined into the full record.
enum class Combine {
  kReplicated,  // every rank holds the same values (hidden states, indices): take one
  kSum,         // head slots a rank does not own hold 0
  kMax,         // head slots a rank does not own hold -inf
};

// Rows to append to one extendible dataset of the dump (or, from finish(), a whole dataset).
struct FactorRecord {
  std::string dataset;  // e.g. "factor2/layer_03/entropy"
  at::Tensor data;      // [n_rows, inner...] CPU, contiguous
  Combine combine = Combine::kReplicated;
};

// Which global heads are recorded, and in which slot of the head dimension of the records.
class HeadSlots {
 public:
  HeadSlots() = default;
  // heads: global head indices in slot order (empty: all n_head heads).
  HeadSlots(std::vector<int64_t> heads, int64_t n_head);
  int64_t size() const { return static_cast<int64_t>(heads_.size()); }
  const std::vector<int64_t>& heads() const { return heads_; }
  int64_t slot(int64_t global_head) const;  // -1 if not recorded

  // The recorded heads among the n_local heads starting at global index head_offset: local indices
  // (into the observation's head dimension) and their slots, both int64 [n].
  struct Local {
    at::Tensor local;
    at::Tensor slots;
    int64_t size() const { return local.size(0); }
    // Sets owned[slot] for the slots held here (owned: [n_slots], a head of this slot was seen).
    void mark(std::vector<bool>& owned) const;
  };
  Local local(int64_t head_offset, int64_t n_local) const;

 private:
  std::vector<int64_t> heads_;
  std::vector<int64_t> slot_of_;  // [n_head] slot or -1
};

class FactorObserver : public Observer {
 public:
  // Resets the per-batch state; observations until end_batch() belong to these rows.
  virtual void begin_batch(const BatchRows& rows) = 0;
  // The rows of the recorded sequences of the batch, in batch order.
  virtual std::vector<FactorRecord> end_batch() = 0;
  // Whole-run datasets, once after the last batch (e.g. statistics over every sequence).
  virtual std::vector<FactorRecord> finish() { return {}; }
  // Datasets and attributes that describe the records (edges, positions, heads); rank 0 only.
  virtual void write_metadata(H5Writer& h5) const {}
};

// Base of the observers that read attention-logit tiles (factor 1's query logits and distance
// statistics, factor 2's entropy): wants the logits of `layers`, keeps the batch's rows, and lets
// the observer set up its per-batch state in start().
// Which attention layers and query heads a logit-tile observer records.
struct FactorSelection {
  std::vector<int64_t> layers;  // attention layers (0-based blocks) recorded
  HeadSlots heads;              // recorded query heads
};

class LogitTileObserver : public FactorObserver {
 public:
  explicit LogitTileObserver(std::vector<int64_t> layers) : layers_(std::move(layers)) {}
  bool wants(Site site, int64_t layer) const final;
  void begin_batch(const BatchRows& rows) final;

 protected:
  virtual void start() = 0;  // rows_ holds the new batch
  // The factor's group with its "layers" and "heads" attributes (write_metadata's common part).
  static void write_selection(H5Writer& h5, const std::string& group, const FactorSelection& s);
  // Zeroes the head slots (dim 1 of t) no tile of this rank touched: the identity of the sum that
  // merges the tensor-parallel ranks' records.
  static void zero_unowned(at::Tensor& t, const std::vector<bool>& owned);
  std::vector<int64_t> layers_;
  BatchRows rows_;
};

// Whether `layers` lists `layer`.
bool has_layer(const std::vector<int64_t>& layers, int64_t layer);

// The per-batch state an observer keeps under `key` for observation o. Fails, naming the observer
// `who`, when o arrives outside begin_batch/end_batch or has another number of rows than the batch.
template <class Map>
typename Map::mapped_type& batch_state(Map& state, const typename Map::key_type& key, const Observation& o,
                                       int64_t batch_rows, const char* who) {
  auto it = state.find(key);
  if (it == state.end()) fail(who, ": an observation of layer ", o.layer, " arrived outside begin_batch/end_batch");
  if (o.data.size(0) != batch_rows) fail(who, ": observation has ", o.data.size(0), " rows, the batch ", batch_rows);
  return it->second;
}

}  // namespace lminf
