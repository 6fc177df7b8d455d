// Task `attention_dump`: runs the model over the data only to record the `dump:` section's factors
// (attention logits, entropy, positional features; docs/hdf5.md). With task.concatenate the data's
// sequences are joined into one stream and cut into pieces of task.max_length tokens, each starting
// with one BOS when data.prepend_bos (the paper's long inputs from short documents).
//   outputs: the dump file (dump.file), results.json (sequences, tokens, throughput) and, with
//            task.nll, token_nll.h5 (schema lminf.token_nll, as written by task perplexity).
#pragma once

#include "experiments/tasks/task_base.h"

namespace lminf {

struct AttentionDumpSpec {
  static constexpr const char* kType = "attention_dump";  // task.type
  int64_t max_length = 4096;
  bool concatenate = false;
  int64_t max_sequences = 0;
  int64_t batch_size = 1;
  bool nll = false;
  template <class V>
  void visit(V& v) {
    v("max_length", max_length, "tokens per sequence (BOS included); longer sequences are cut as data.truncation says", Min{2});
    v("concatenate", concatenate,
      "join all sequences into one stream and cut it into pieces of exactly max_length tokens (one BOS at the "
      "start of each when data.prepend_bos; a trailing partial piece is dropped)");
    v("max_sequences", max_sequences, "run at most this many sequences (after concatenation; 0: all)", Min{0});
    v("batch_size", batch_size, "sequences per forward call (shorter ones are right-padded)", Min{1});
    v("nll", nll, "also write token_nll.h5 (per-token NLL, as task perplexity) for NLL against position");
  }
};

// The task's sequences from documents without BOS: each led by `bos` (when >= 0) and cut to
// max_length as data.truncation says, or (concatenate) the stream of all documents cut into pieces
// of max_length tokens, each led by `bos`.
std::vector<std::vector<int64_t>> dump_sequences(std::vector<std::vector<int64_t>> seqs, const AttentionDumpSpec& spec,
                                                 int64_t bos, const std::string& truncation);

class AttentionDumpTask final : public SpecTask<AttentionDumpSpec> {
 public:
  std::vector<std::string> problems(const ExperimentSpec& spec, const ModelConfig& model) const override;
  std::vector<std::string> outputs() const override {
    if (spec_.nll) return {"results.json", "token_nll.h5"};
    return {"results.json"};
  }
  void run(RunContext& ctx) override;
};

}  // namespace lminf
