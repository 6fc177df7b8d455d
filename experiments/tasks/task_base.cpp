#include "experiments/tasks/task_base.h"

#include <algorithm>
#include <cstdio>

#include "experiments/outputs/json_records.h"
#include "experiments/outputs/outputs.h"

namespace lminf {

std::vector<int64_t> data_parallel_items(int64_t total, int64_t n, int64_t rank) {
  std::vector<int64_t> mine;
  for (int64_t i = rank; i < total; i += n) mine.push_back(i);
  return mine;
}

DataParallelShare::DataParallelShare(const RunContext& ctx, int64_t total)
    : dp_(ctx.data_parallel ? ctx.data_parallel : &single_), total_(total), replicas_(dp_->size()) {
  items_ = data_parallel_items(total_, replicas_, dp_->rank());
}

at::Tensor DataParallelShare::gather_rows(const at::Tensor& part) {
  if (replicas_ == 1) return part;
  at::Tensor all = dp_->all_gather(part, 0);  // [replicas * rows, ...]
  std::vector<int64_t> shape = part.sizes().vec();
  shape[0] = total_;
  at::Tensor out = at::empty(shape, part.options());
  for (int64_t i = 0; i < total_; ++i) out[i].copy_(all[(i % replicas_) * rows() + i / replicas_]);
  return out;
}

std::string DataParallelShare::log_suffix() const {
  return replicas_ > 1 ? ", " + std::to_string(replicas_) + " data-parallel replicas" : std::string();
}

std::string journal_flush_help(const std::string& stem) {
  return "samples between writes (and fsyncs) of the resume journal " + stem +
         ".partial.jsonl in output.dir; a killed run resumes after the last one written";
}

RecordLoop::RecordLoop(RunContext& ctx, DataParallelShare& share, const YAML::Node& task_resolved,
                       const RecordLoopOptions& o)
    : share_(share),
      journal_(record_journal_options(ctx, o.stem, task_resolved, {"flush_every"}, o.flush_every), ctx.world),
      progress_(o.label, static_cast<int64_t>(share.items().size()), o.unit, ctx.writer) {
  progress_.add_resumed(journal_.resumed());
}

void RecordLoop::record(nlohmann::json entry) {
  journal_.append(std::move(entry));
  progress_.add(1);
}

void RecordLoop::end() {
  journal_.flush();
  progress_.finish();
  elapsed_s_ = progress_.elapsed_s();
}

nlohmann::json RecordLoop::merge(const nlohmann::json& mine) {
  end();
  return gather_json_arrays(share_.comm(), mine);
}

void RecordLoop::finish(const RunContext& ctx, nlohmann::json results) {
  results["resumed_samples"] = journal_.resumed_everywhere();
  results["elapsed_s"] = elapsed_s();
  write_results_json(ctx.final_dir / "results.json", results, ctx.provenance);
  journal_.finish();
}

at::Tensor right_padded_batch(const std::vector<const std::vector<int64_t>*>& rows) {
  int64_t T = 0;
  for (const auto* r : rows) T = std::max<int64_t>(T, static_cast<int64_t>(r->size()));
  at::Tensor ids = at::zeros({static_cast<int64_t>(rows.size()), T}, at::kLong);
  for (size_t b = 0; b < rows.size(); ++b)
    if (!rows[b]->empty())
      ids[static_cast<int64_t>(b)].narrow(0, 0, static_cast<int64_t>(rows[b]->size())).copy_(at::tensor(*rows[b], at::kLong));
  return ids;
}

void print_nll_table(const nlohmann::json& buckets, const char* first, int position_width, int tokens_width,
                     int64_t tokens, double mean_nll, double ppl) {
  const int pw = position_width, tw = tokens_width;
  std::printf("%-*s %*s %10s %12s\n", pw, first, tw, "tokens", "mean NLL", "perplexity");
  for (const auto& b : buckets) {
    char range[48];
    std::snprintf(range, sizeof range, "%lld-%lld", static_cast<long long>(b["start"].get<int64_t>()),
                  static_cast<long long>(b["end"].get<int64_t>() - 1));
    std::printf("%-*s %*lld %10.4f %12.3f\n", pw, range, tw, static_cast<long long>(b["tokens"].get<int64_t>()),
                b["mean_nll"].get<double>(), b["ppl"].get<double>());
  }
  std::printf("%-*s %*lld %10.4f %12.3f\n", pw, "all", tw, static_cast<long long>(tokens), mean_nll, ppl);
  std::fflush(stdout);
}

}  // namespace lminf
