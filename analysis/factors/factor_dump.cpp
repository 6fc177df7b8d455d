#include "analysis/factors/factor_dump.h"

#include <algorithm>

#include "analysis/dump_schema.h"
#include "analysis/factors/attention_entropy.h"
#include "framework/core/error.h"
#include "analysis/factors/feature_sample.h"
#include "framework/core/logging.h"
#include "framework/io/h5_provenance.h"
#include "analysis/factors/logit_distance_stats.h"
#include "analysis/factors/query_logits.h"

namespace lminf {

FactorDump::FactorDump(FactorDumpOptions opts) : opts_(std::move(opts)) {
  const DumpSpec& d = opts_.spec;
  const ModelConfig& m = opts_.model;
  if (opts_.max_length <= 0) fail("dump: no positions to record (max_length ", opts_.max_length, ")");
  const std::vector<int64_t> layers = dump_layers(d, m);
  const HeadSlots heads(d.heads, m.n_head);
  if (d.has("logits")) {
    observers_.push_back(std::make_shared<QueryLogitsObserver>(
        QueryLogitsOptions{{layers, heads}, opts_.max_length, d.query_stride}));
    std::vector<int64_t> edges = d.distance_edges.empty() ? uniform_distance_edges(d.distance_bucket, opts_.max_length)
                                                          : d.distance_edges;
    observers_.push_back(std::make_shared<LogitDistanceObserver>(LogitDistanceOptions{{layers, heads}, edges}));
  }
  if (d.has("entropy"))
    observers_.push_back(std::make_shared<AttentionEntropyObserver>(AttentionEntropyOptions{{layers, heads}, opts_.max_length}));
  if (d.has("features")) {
    auto site = [&](const char* s) { return std::find(d.feature_sites.begin(), d.feature_sites.end(), s) != d.feature_sites.end(); };
    FeatureSampleOptions f;
    if (site("hidden")) f.hidden_states = dump_hidden_states(d, m);
    f.layers = layers;
    f.query = site("query");
    f.key = site("key");
    f.attn_out = site("attn_out");
    f.heads = heads;
    f.kv_heads = HeadSlots(dump_kv_heads(d, m), m.n_head_kv);
    f.first = d.feature_first;
    f.stride = d.feature_stride;
    f.hidden_size = m.hidden_size;
    f.head_dim = m.head_dim;
    observers_.push_back(std::make_shared<FeatureSampleObserver>(f));
  }
  if (!opts_.writer) return;

  const bool in_place = d.flush_every > 0;
  h5_.emplace(in_place ? H5Writer::open_in_place(opts_.path) : H5Writer(opts_.path));
  write_provenance_attrs(*h5_, opts_.provenance, dump_schema::kFactors, dump_schema::kFactorsVersion);
  std::string factors;
  for (const auto& f : d.factors) factors += (factors.empty() ? "" : ",") + f;
  h5_->set_attr("/", "factors", factors);
  h5_->set_attr("/", "dump", to_yaml_string(write_spec(d)));
  h5_->set_attr("/", "max_length", opts_.max_length);
  h5_->set_attr("/", "n_layer", m.n_layer);
  h5_->set_attr("/", "n_head", m.n_head);
  h5_->set_attr("/", "n_head_kv", m.n_head_kv);
  h5_->set_attr("/", "head_dim", m.head_dim);
  h5_->set_attr("/", "hidden_size", m.hidden_size);
  h5_->set_attr("/", "max_position_embeddings", m.max_position_embeddings);
  h5_->set_attr("/", "n_sequences", int64_t{0});
  h5_->set_attr("/", "complete", int64_t{0});
  h5_->create_group("sequences");
  for (const auto& ob : observers_) ob->write_metadata(*h5_);
  if (in_place) h5_->flush();
  log_info("dump: recording ", factors, " into ", opts_.path.string(), in_place ? " (in place, flushed every " : "",
           in_place ? std::to_string(d.flush_every) + " sequences)" : "");
}

FactorDump::~FactorDump() = default;

void FactorDump::begin_batch(const std::vector<int64_t>& sequences, const std::vector<int64_t>& lengths) {
  if (sequences.size() != lengths.size()) fail("FactorDump::begin_batch: ", sequences.size(), " sequences, ", lengths.size(), " lengths");
  const auto& sel = opts_.spec.sequences;
  BatchRows rows;
  for (size_t b = 0; b < sequences.size(); ++b) {
    const bool chosen = sel.empty() || std::find(sel.begin(), sel.end(), sequences[b]) != sel.end();
    rows.sequence.push_back(chosen && lengths[b] > 0 ? sequences[b] : -1);
    rows.length.push_back(std::min(lengths[b], opts_.max_length));
  }
  batch_sequences_.clear();
  batch_lengths_.clear();
  for (size_t b = 0; b < rows.sequence.size(); ++b) {
    if (rows.sequence[b] < 0) continue;
    batch_sequences_.push_back(rows.sequence[b]);
    batch_lengths_.push_back(rows.length[b]);
  }
  for (const auto& ob : observers_) ob->begin_batch(rows);
  in_batch_ = true;
}

void FactorDump::combine(FactorRecord& r) {
  if (!opts_.tp || opts_.tp->size() == 1 || r.combine == Combine::kReplicated) return;
  opts_.tp->all_reduce(r.data, r.combine == Combine::kSum ? ReduceOp::kSum : ReduceOp::kMax);
}

void FactorDump::append(const FactorRecord& r) {
  auto it = datasets_.find(r.dataset);
  if (it == datasets_.end()) {
    std::vector<int64_t> inner(r.data.sizes().begin() + 1, r.data.sizes().end());
    int64_t row_bytes = r.data.element_size();
    for (int64_t x : inner) row_bytes *= x;
    const int64_t chunk_rows = std::clamp<int64_t>((int64_t{1} << 20) / std::max<int64_t>(row_bytes, 1), 1, 4096);
    it = datasets_.emplace(r.dataset, h5_->create_extendible(r.dataset, r.data.scalar_type(), inner, chunk_rows)).first;
  }
  it->second.append(r.data);
}

void FactorDump::end_batch() {
  if (!in_batch_) fail("FactorDump::end_batch without begin_batch");
  in_batch_ = false;
  std::vector<FactorRecord> records;
  for (const auto& ob : observers_)
    for (auto& r : ob->end_batch()) records.push_back(std::move(r));
  // Which sequences this batch recorded, in the order of every observer's rows.
  const std::vector<int64_t>& seq = batch_sequences_;
  records.push_back({"sequences/index", at::tensor(seq, at::kLong), Combine::kReplicated});
  records.push_back({"sequences/length", at::tensor(batch_lengths_, at::kLong), Combine::kReplicated});
  for (auto& r : records) {
    combine(r);
    if (h5_) append(r);
  }
  sequences_written_ += static_cast<int64_t>(seq.size());
  unflushed_ += static_cast<int64_t>(seq.size());
  if (h5_ && opts_.spec.flush_every > 0 && unflushed_ >= opts_.spec.flush_every) {
    h5_->set_attr("/", "n_sequences", sequences_written_);
    h5_->flush();
    unflushed_ = 0;
  }
}

void FactorDump::finish() {
  if (in_batch_) fail("FactorDump::finish inside a batch (call end_batch first)");
  std::vector<FactorRecord> records;
  for (const auto& ob : observers_)
    for (auto& r : ob->finish()) records.push_back(std::move(r));
  for (auto& r : records) {
    combine(r);
    if (h5_) h5_->write(r.dataset, r.data);
  }
  if (!h5_) return;
  h5_->set_attr("/", "n_sequences", sequences_written_);
  h5_->set_attr("/", "complete", int64_t{1});
  h5_->commit();
  h5_.reset();
  datasets_.clear();
  log_info("dump: ", sequences_written_, " sequences written to ", opts_.path.string());
}

}  // namespace lminf
