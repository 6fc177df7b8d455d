#include "experiments/tasks/perplexity_task.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "experiments/outputs/run_factor_dump.h"
#include "experiments/outputs/outputs.h"
#include "experiments/data/sequence_source.h"
#include "framework/core/error.h"
#include "framework/io/h5_file.h"
#include "framework/core/logging.h"
#include "framework/core/progress.h"
#include "experiments/data/token_data.h"

namespace lminf {

void PerplexityTask::configure(const YAML::Node& section, const SpecSource& src) {
  read_spec(section, spec_, src, "task");
}

nlohmann::json summarize_nll(const at::Tensor& nll, const std::vector<int64_t>& lengths, int64_t bucket) {
  const int64_t n = nll.size(0), longest = nll.size(1);
  at::Tensor d = nll.to(at::kDouble);
  auto acc = d.accessor<double, 2>();
  const int64_t n_buckets = (longest + bucket - 1) / bucket;
  std::vector<double> bsum(static_cast<size_t>(n_buckets), 0.0);
  std::vector<int64_t> bcount(static_cast<size_t>(n_buckets), 0);
  double total = 0, seq_mean_sum = 0;
  int64_t tokens = 0, seqs_with_tokens = 0;
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t j = 0; j < lengths[static_cast<size_t>(i)]; ++j) {
      const double x = acc[i][j];
      s += x;
      bsum[static_cast<size_t>(j / bucket)] += x;
      bcount[static_cast<size_t>(j / bucket)] += 1;
    }
    total += s;
    tokens += lengths[static_cast<size_t>(i)];
    if (lengths[static_cast<size_t>(i)] > 0) {
      seq_mean_sum += s / static_cast<double>(lengths[static_cast<size_t>(i)]);
      ++seqs_with_tokens;
    }
  }
  nlohmann::json j;
  j["sequences"] = n;
  j["tokens"] = tokens;
  j["mean_nll"] = tokens > 0 ? total / static_cast<double>(tokens) : std::numeric_limits<double>::quiet_NaN();
  j["ppl"] = std::exp(j["mean_nll"].get<double>());
  j["mean_sequence_nll"] = seqs_with_tokens > 0 ? seq_mean_sum / static_cast<double>(seqs_with_tokens) : 0.0;
  nlohmann::json buckets = nlohmann::json::array();
  for (int64_t b = 0; b < n_buckets; ++b) {
    const size_t bi = static_cast<size_t>(b);
    if (bcount[bi] == 0) continue;
    const double m = bsum[bi] / static_cast<double>(bcount[bi]);
    buckets.push_back({{"start", b * bucket},
                       {"end", std::min((b + 1) * bucket, longest)},
                       {"tokens", bcount[bi]},
                       {"mean_nll", m},
                       {"ppl", std::exp(m)}});
  }
  j["buckets"] = buckets;
  return j;
}

void print_summary_table(const nlohmann::json& summary) {
  std::printf("%-16s %10s %10s %12s\n", "positions", "tokens", "mean NLL", "perplexity");
  for (const auto& b : summary["buckets"]) {
    char range[32];
    std::snprintf(range, sizeof range, "%lld-%lld", static_cast<long long>(b["start"].get<int64_t>()),
                  static_cast<long long>(b["end"].get<int64_t>() - 1));
    std::printf("%-16s %10lld %10.4f %12.3f\n", range, static_cast<long long>(b["tokens"].get<int64_t>()),
                b["mean_nll"].get<double>(), b["ppl"].get<double>());
  }
  std::printf("%-16s %10lld %10.4f %12.3f\n", "all", static_cast<long long>(summary["tokens"].get<int64_t>()),
              summary["mean_nll"].get<double>(), summary["ppl"].get<double>());
  std::fflush(stdout);
}

void PerplexityTask::run(RunContext& ctx) {
  const ExperimentSpec& es = ctx.spec;
  auto source = open_sequence_source(es.data, ctx.model_config);
  auto seqs = read_all_sequences(*source, es.data);
  for (auto& s : seqs) truncate_tokens(s, spec_.max_length, es.data.truncation);

  const int64_t n = static_cast<int64_t>(seqs.size());
  int64_t longest = 0, total_tokens = 0;
  std::vector<int64_t> lengths;
  for (const auto& s : seqs) {
    const int64_t len = std::max<int64_t>(0, static_cast<int64_t>(s.size()) - 1);
    lengths.push_back(len);
    longest = std::max(longest, len);
    total_tokens += static_cast<int64_t>(s.size());
  }
  if (longest == 0) fail(es.data.path, ": every sequence has fewer than 2 tokens: nothing to predict");

  // Data parallelism: replica g of dp takes sequences g, g + dp, g + 2 dp, ... (disjoint, the same on
  // every run); its rows are gathered back into file order below.
  LocalCommunicator single;
  Communicator& dp = ctx.data_parallel ? *ctx.data_parallel : single;
  const int64_t n_dp = dp.size(), my_dp = dp.rank();
  std::vector<int64_t> mine;  // indices into seqs, in file order
  int64_t my_tokens = 0;
  for (int64_t i = my_dp; i < n; i += n_dp) {
    mine.push_back(i);
    my_tokens += static_cast<int64_t>(seqs[static_cast<size_t>(i)].size());
  }
  log_info("perplexity: ", n, " sequences, ", total_tokens, " tokens, longest ", longest + 1, ", variant ",
           ctx.attention.name(), ", dtype ", es.model.dtype,
           n_dp > 1 ? ", " + std::to_string(n_dp) + " data-parallel replicas" : std::string());

  // This replica's rows: [ceil(n / dp), longest] float32, NaN past each sequence's end.
  const int64_t rows = (n + n_dp - 1) / n_dp;
  at::Tensor part = at::full({rows, longest}, std::numeric_limits<float>::quiet_NaN(), at::kFloat);
  Progress progress("perplexity", my_tokens, "tok", ctx.writer);
  auto dump = open_factor_dump(ctx, longest);  // null without a dump section
  ForwardContext fctx{&ctx.attention, ctx.observers.empty() ? nullptr : &ctx.observers};
  const int64_t n_mine = static_cast<int64_t>(mine.size());
  for (int64_t start = 0; start < n_mine; start += spec_.batch_size) {
    const int64_t bsz = std::min(spec_.batch_size, n_mine - start);
    auto seq = [&](int64_t b) -> const std::vector<int64_t>& {
      return seqs[static_cast<size_t>(mine[static_cast<size_t>(start + b)])];
    };
    int64_t T = 0, batch_tokens = 0;
    for (int64_t b = 0; b < bsz; ++b) {
      T = std::max<int64_t>(T, static_cast<int64_t>(seq(b).size()));
      batch_tokens += static_cast<int64_t>(seq(b).size());
    }
    if (T < 2) {
      progress.add(batch_tokens);
      continue;
    }
    at::Tensor ids = at::zeros({bsz, T}, at::kLong);  // right-padded with id 0; causal, so padding is never read
    for (int64_t b = 0; b < bsz; ++b) {
      const auto& s = seq(b);
      ids[b].narrow(0, 0, static_cast<int64_t>(s.size())).copy_(at::tensor(s, at::kLong));
    }
    if (dump) {
      std::vector<int64_t> batch_seqs, batch_lens;
      for (int64_t b = 0; b < bsz; ++b) {
        batch_seqs.push_back(mine[static_cast<size_t>(start + b)]);
        batch_lens.push_back(lengths[static_cast<size_t>(mine[static_cast<size_t>(start + b)])]);
      }
      dump->begin_batch(batch_seqs, batch_lens);
    }
    at::Tensor hidden = ctx.model.forward(ids.narrow(1, 0, T - 1), nullptr, fctx);
    if (dump) dump->end_batch();
    at::Tensor tok_nll = ctx.model.token_nll(hidden, ids.narrow(1, 1, T - 1)).to(at::kCPU);  // [bsz, T-1]
    for (int64_t b = 0; b < bsz; ++b) {
      const int64_t len = lengths[static_cast<size_t>(mine[static_cast<size_t>(start + b)])];
      if (len > 0) part[start + b].narrow(0, 0, len).copy_(tok_nll[b].narrow(0, 0, len));
    }
    progress.add(batch_tokens);
  }
  progress.finish();

  // Merge once: every replica's rows, gathered [dp * rows, longest]; sequence i is row i / dp of
  // replica i % dp.
  at::Tensor nll = part;
  if (n_dp > 1) {
    at::Tensor all = dp.all_gather(part, 0);
    nll = at::empty({n, longest}, at::kFloat);
    for (int64_t i = 0; i < n; ++i) nll[i].copy_(all[(i % n_dp) * rows + i / n_dp]);
  }
  const double elapsed = progress.elapsed_s();
  if (dump) dump->finish();  // whole-run records; rank 0 commits the file

  if (!ctx.writer) return;
  nlohmann::json summary = summarize_nll(nll, lengths, spec_.bucket);
  summary["task"] = "perplexity";
  summary["data"] = source->report();
  summary["elapsed_s"] = elapsed;
  summary["tokens_per_s"] = elapsed > 0 ? static_cast<double>(total_tokens) / elapsed : 0.0;

  {
    H5Writer h5(ctx.out_dir / "token_nll.h5");
    h5.write("token_nll", nll);
    h5.write("lengths", at::tensor(lengths, at::kLong));
    write_provenance_attrs(h5, ctx.provenance, "lminf.token_nll", 1);
    h5.set_attr("/", "bucket", spec_.bucket);
    h5.commit();
  }
  write_results_json(ctx.out_dir / "results.json", summary, ctx.provenance);
  print_summary_table(summary);
  log_info("perplexity: mean NLL ", summary["mean_nll"].get<double>(), " (ppl ", summary["ppl"].get<double>(),
           ") over ", summary["tokens"].get<int64_t>(), " predicted tokens; wrote ", (ctx.out_dir / "results.json").string());
}

}  // namespace lminf
