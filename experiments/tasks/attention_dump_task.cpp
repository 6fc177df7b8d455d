#include "experiments/tasks/attention_dump_task.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "experiments/outputs/run_factor_dump.h"
#include "experiments/outputs/outputs.h"
#include "experiments/data/sequence_source.h"
#include "framework/core/error.h"
#include "framework/core/logging.h"
#include "framework/core/progress.h"
#include "experiments/data/token_data.h"

namespace lminf {

std::vector<std::string> AttentionDumpTask::problems(const ExperimentSpec& spec, const ModelConfig&) const {
  if (spec.dump.enabled()) return {};
  return {"task.type attention_dump records nothing without a dump section (add e.g. dump: {factors: [logits, "
          "entropy, features]})"};
}

std::vector<std::vector<int64_t>> dump_sequences(std::vector<std::vector<int64_t>> seqs, const AttentionDumpSpec& spec,
                                                 int64_t bos, const std::string& truncation) {
  std::vector<std::vector<int64_t>> out;
  if (!spec.concatenate) {
    for (auto& s : seqs) {
      if (bos >= 0) s.insert(s.begin(), bos);
      truncate_tokens(s, spec.max_length, truncation);
      out.push_back(std::move(s));
    }
  } else {
    std::vector<int64_t> stream;
    for (const auto& s : seqs) stream.insert(stream.end(), s.begin(), s.end());
    const int64_t body = spec.max_length - (bos >= 0 ? 1 : 0);
    for (int64_t start = 0; start + body <= static_cast<int64_t>(stream.size()); start += body) {
      std::vector<int64_t> piece;
      if (bos >= 0) piece.push_back(bos);
      piece.insert(piece.end(), stream.begin() + start, stream.begin() + start + body);
      out.push_back(std::move(piece));
    }
    if (out.empty())
      fail("task.concatenate: the data holds ", stream.size(), " tokens, fewer than one piece of task.max_length=",
           spec.max_length, " (lower task.max_length or add data)");
  }
  if (spec.max_sequences > 0 && static_cast<int64_t>(out.size()) > spec.max_sequences)
    out.resize(static_cast<size_t>(spec.max_sequences));
  return out;
}

void AttentionDumpTask::run(RunContext& ctx) {
  const ExperimentSpec& es = ctx.spec;
  // Documents without BOS (any data.format); dump_sequences adds it per sequence or per piece.
  DataSpec data = es.data;
  data.prepend_bos = false;
  auto source = open_sequence_source(data, ctx.model_config);
  auto seqs = dump_sequences(read_all_sequences(*source, data), spec_,
                             es.data.prepend_bos ? ctx.model_config.bos_token_id : -1, es.data.truncation);
  const int64_t n = static_cast<int64_t>(seqs.size());
  int64_t longest = 0, total_tokens = 0;
  for (const auto& s : seqs) {
    longest = std::max<int64_t>(longest, static_cast<int64_t>(s.size()));
    total_tokens += static_cast<int64_t>(s.size());
  }
  if (longest == 0) fail(es.data.path, ": no tokens to run");
  log_info("attention_dump: ", n, " sequences, ", total_tokens, " tokens, longest ", longest, ", variant ",
           ctx.attention.name());

  auto dump = open_factor_dump(ctx, longest);
  // With task.nll: entry [s, i] is the NLL of token i+1 of sequence s (NaN past its end).
  at::Tensor nll;
  if (spec_.nll) nll = at::full({n, std::max<int64_t>(longest - 1, 1)}, std::numeric_limits<float>::quiet_NaN(), at::kFloat);
  ForwardContext fctx{&ctx.attention, &ctx.observers};
  Progress progress("attention_dump", total_tokens, "tok", ctx.writer);
  for (int64_t start = 0; start < n; start += spec_.batch_size) {
    const int64_t bsz = std::min(spec_.batch_size, n - start);
    std::vector<const std::vector<int64_t>*> batch;
    std::vector<int64_t> batch_seqs, batch_lens;
    for (int64_t b = 0; b < bsz; ++b) {
      batch.push_back(&seqs[static_cast<size_t>(start + b)]);
      batch_seqs.push_back(start + b);
      batch_lens.push_back(static_cast<int64_t>(batch.back()->size()));
    }
    const at::Tensor ids = right_padded_batch(batch);
    const int64_t T = ids.size(1);
    if (T == 0) continue;
    dump->begin_batch(batch_seqs, batch_lens);
    at::Tensor hidden = ctx.model.forward(ids, nullptr, fctx);
    dump->end_batch();
    if (spec_.nll && T >= 2) {
      at::Tensor tok = ctx.model.token_nll(hidden.narrow(1, 0, T - 1), ids.narrow(1, 1, T - 1));  // [bsz, T-1]
      for (int64_t b = 0; b < bsz; ++b) {
        const int64_t len = batch_lens[static_cast<size_t>(b)] - 1;
        if (len > 0) nll[start + b].narrow(0, 0, len).copy_(tok[b].narrow(0, 0, len));
      }
    }
    int64_t tokens = 0;
    for (int64_t l : batch_lens) tokens += l;
    progress.add(tokens);
  }
  progress.finish();
  dump->finish();
  if (!ctx.writer) return;
  nlohmann::json summary;
  summary["task"] = "attention_dump";
  summary["sequences"] = n;
  summary["tokens"] = total_tokens;
  summary["longest"] = longest;
  summary["dump"] = es.dump.file;
  summary["sequences_recorded"] = dump->sequences_written();
  summary["elapsed_s"] = progress.elapsed_s();
  summary["tokens_per_s"] = progress.elapsed_s() > 0 ? static_cast<double>(total_tokens) / progress.elapsed_s() : 0.0;
  if (spec_.nll) {
    std::vector<int64_t> lengths;
    for (const auto& s : seqs) lengths.push_back(std::max<int64_t>(0, static_cast<int64_t>(s.size()) - 1));
    write_token_nll_h5(ctx.final_dir / "token_nll.h5", nll, lengths, ctx.provenance);
    const at::Tensor finite = nll.masked_select(at::isfinite(nll));
    summary["mean_nll"] = finite.numel() > 0 ? finite.to(at::kDouble).mean().item<double>() : std::nan("");
  }
  write_results_json(ctx.final_dir / "results.json", summary, ctx.provenance);
  log_info("attention_dump: wrote ", (ctx.out_dir / es.dump.file).string());
}

}  // namespace lminf
