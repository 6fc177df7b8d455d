#include "experiments/tasks/perplexity_task.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "experiments/outputs/run_factor_dump.h"
#include "experiments/outputs/outputs.h"
#include "experiments/data/sequence_source.h"
#include "framework/core/error.h"
#include "framework/core/logging.h"
#include "framework/core/progress.h"
#include "experiments/data/token_data.h"

namespace lminf {

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
  print_nll_table(summary["buckets"], "positions", 16, 10, summary["tokens"].get<int64_t>(),
                  summary["mean_nll"].get<double>(), summary["ppl"].get<double>());
}

namespace {

// The task's sequences, cut to task.max_length; lengths[i]: the tokens predicted in sequence i.
struct ScoredData {
  std::unique_ptr<SequenceSource> source;
  std::vector<std::vector<int64_t>> seqs;
  std::vector<int64_t> lengths;
  int64_t longest = 0, total_tokens = 0;  // longest: most predicted tokens; total: every token fed
};

ScoredData read_scored_data(const ExperimentSpec& es, const ModelConfig& model, int64_t max_length) {
  ScoredData d;
  d.source = open_sequence_source(es.data, model);
  d.seqs = read_all_sequences(*d.source, es.data);
  for (auto& s : d.seqs) {
    truncate_tokens(s, max_length, es.data.truncation);
    const int64_t len = std::max<int64_t>(0, static_cast<int64_t>(s.size()) - 1);
    d.lengths.push_back(len);
    d.longest = std::max(d.longest, len);
    d.total_tokens += static_cast<int64_t>(s.size());
  }
  if (d.longest == 0) fail(es.data.path, ": every sequence has fewer than 2 tokens: nothing to predict");
  return d;
}

// Hidden states [B, T, hidden] of ids [B, T]: one call without a cache (chunk 0), or calls of
// `chunk` tokens through a fresh cache of the variant's policy.
at::Tensor forward_in_chunks(CausalLM& model, const at::Tensor& ids, int64_t chunk, const ForwardContext& fctx) {
  if (chunk == 0) return model.forward(ids, nullptr, fctx);
  KVCache cache = model.new_cache(*fctx.attention);
  std::vector<at::Tensor> parts;
  for (int64_t s = 0; s < ids.size(1); s += chunk) {
    const int64_t n = std::min(chunk, ids.size(1) - s);
    parts.push_back(model.forward(ids.narrow(1, s, n), &cache, fctx));  // advances the cache
  }
  return at::cat(parts, 1);
}

// Scores this replica's share batch by batch: its rows [share.rows(), longest] float32, NaN past
// each sequence's end (row k: the share's k-th sequence).
at::Tensor score_share(RunContext& ctx, const ScoredData& d, const DataParallelShare& share, int64_t batch_size,
                       int64_t chunk, FactorDump* dump, Progress& progress) {
  const std::vector<int64_t>& mine = share.items();
  at::Tensor part = at::full({share.rows(), d.longest}, std::numeric_limits<float>::quiet_NaN(), at::kFloat);
  ForwardContext fctx{&ctx.attention, ctx.observers.empty() ? nullptr : &ctx.observers};
  const int64_t n_mine = static_cast<int64_t>(mine.size());
  for (int64_t start = 0; start < n_mine; start += batch_size) {
    const int64_t bsz = std::min(batch_size, n_mine - start);
    std::vector<const std::vector<int64_t>*> batch;
    std::vector<int64_t> batch_seqs, batch_lens;
    int64_t batch_tokens = 0;
    for (int64_t b = 0; b < bsz; ++b) {
      const size_t i = static_cast<size_t>(mine[static_cast<size_t>(start + b)]);
      batch.push_back(&d.seqs[i]);
      batch_seqs.push_back(static_cast<int64_t>(i));
      batch_lens.push_back(d.lengths[i]);
      batch_tokens += static_cast<int64_t>(d.seqs[i].size());
    }
    const at::Tensor ids = right_padded_batch(batch);
    const int64_t T = ids.size(1);
    if (T >= 2) {
      if (dump) dump->begin_batch(batch_seqs, batch_lens);
      at::Tensor hidden = forward_in_chunks(ctx.model, ids.narrow(1, 0, T - 1), chunk, fctx);
      if (dump) dump->end_batch();
      at::Tensor tok_nll = ctx.model.token_nll(hidden, ids.narrow(1, 1, T - 1)).to(at::kCPU);  // [bsz, T-1]
      for (int64_t b = 0; b < bsz; ++b) {
        const int64_t len = batch_lens[static_cast<size_t>(b)];
        if (len > 0) part[start + b].narrow(0, 0, len).copy_(tok_nll[b].narrow(0, 0, len));
      }
    }
    progress.add(batch_tokens);
  }
  progress.finish();
  return part;
}

}  // namespace

std::vector<std::string> PerplexityTask::problems(const ExperimentSpec& spec, const ModelConfig&) const {
  if (!spec.attention.cache.evicts() || spec_.chunk_size > 0) return {};
  return {"attention.cache.policy: " + spec.attention.cache.policy +
          " evicts between forward calls, but task.chunk_size is 0 (each sequence in one call, without a KV "
          "cache); set task.chunk_size (e.g. 1 for token-by-token decoding)"};
}

void PerplexityTask::run(RunContext& ctx) {
  const ExperimentSpec& es = ctx.spec;
  const ScoredData d = read_scored_data(es, ctx.model_config, spec_.max_length);
  const int64_t n = static_cast<int64_t>(d.seqs.size());
  // Replica g takes sequences g, g + dp, ...; its rows are gathered back into file order.
  DataParallelShare share(ctx, n);
  int64_t my_tokens = 0;
  for (int64_t i : share.items()) my_tokens += static_cast<int64_t>(d.seqs[static_cast<size_t>(i)].size());
  log_info("perplexity: ", n, " sequences, ", d.total_tokens, " tokens, longest ", d.longest + 1, ", variant ",
           ctx.attention.name(), ", dtype ", es.model.dtype, share.log_suffix());

  Progress progress("perplexity", my_tokens, "tok", ctx.writer);
  auto dump = open_factor_dump(ctx, d.longest);  // null without a dump section
  const at::Tensor part = score_share(ctx, d, share, spec_.batch_size, spec_.chunk_size, dump.get(), progress);
  const at::Tensor nll = share.gather_rows(part);  // [n, longest]: merged once
  const double elapsed = progress.elapsed_s();
  if (dump) dump->finish();  // whole-run records; rank 0 commits the file
  if (!ctx.writer) return;

  nlohmann::json summary = summarize_nll(nll, d.lengths, spec_.bucket);
  summary["task"] = "perplexity";
  summary["data"] = d.source->report();
  summary["elapsed_s"] = elapsed;
  summary["tokens_per_s"] = elapsed > 0 ? static_cast<double>(d.total_tokens) / elapsed : 0.0;
  write_token_nll_h5(ctx.final_dir / "token_nll.h5", nll, d.lengths, ctx.provenance, spec_.bucket);
  write_results_json(ctx.final_dir / "results.json", summary, ctx.provenance);
  print_summary_table(summary);
  log_info("perplexity: mean NLL ", summary["mean_nll"].get<double>(), " (ppl ", summary["ppl"].get<double>(),
           ") over ", summary["tokens"].get<int64_t>(), " predicted tokens; wrote ", (ctx.out_dir / "results.json").string());
}

}  // namespace lminf
