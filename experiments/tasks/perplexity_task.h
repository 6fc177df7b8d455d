// Task `perplexity`: per-token NLL of each sequence (truncated to task.max_length tokens), mean NLL
// and perplexity overall and per position bucket.
//   outputs: results.json, token_nll.h5 (token_nll [n_sequences, longest] float32, NaN past each
//            sequence's end; lengths [n_sequences] int64), written atomically.
// With task.chunk_size > 0 each batch goes through a fresh KV cache in calls of chunk_size tokens,
// so an evicting cache policy (attention.cache) acts between them.
// Under data parallelism replica g takes sequences g, g + dp, ...; rank 0 gathers the rows once and
// writes the same files as a one-rank run.
#pragma once

#include "experiments/tasks/task_base.h"

namespace lminf {

struct PerplexitySpec {
  static constexpr const char* kType = "perplexity";  // task.type
  int64_t max_length = 4096;
  int64_t bucket = 512;
  int64_t batch_size = 1;
  int64_t chunk_size = 0;
  template <class V>
  void visit(V& v) {
    v("max_length", max_length, "tokens per sequence (BOS included); longer sequences are cut as data.truncation says", Min{2});
    v("bucket", bucket, "width, in positions, of the NLL-by-position buckets", Min{1});
    v("batch_size", batch_size, "sequences per forward call (shorter ones are right-padded)", Min{1});
    v("chunk_size", chunk_size, "0: each batch in one forward call without a KV cache; > 0: fed in calls of this "
      "many tokens through the variant's KV cache, whose policy (attention.cache) acts between calls", Min{0});
  }
};

// Summary of NLL rows: token-weighted mean, mean of per-sequence means, and per-bucket means.
// nll: [n, longest] float32 with NaN padding; lengths: entries per row.
nlohmann::json summarize_nll(const at::Tensor& nll, const std::vector<int64_t>& lengths, int64_t bucket);

// Prints the bucket table of a summary to stdout.
void print_summary_table(const nlohmann::json& summary);

class PerplexityTask final : public SpecTask<PerplexitySpec> {
 public:
  std::vector<std::string> problems(const ExperimentSpec& spec, const ModelConfig& model) const override;
  std::vector<std::string> outputs() const override { return {"results.json", "token_nll.h5"}; }
  void run(RunContext& ctx) override;
};

}  // namespace lminf
