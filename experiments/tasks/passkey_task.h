// Task `passkey`: passkey retrieval (LM-Infinite's eval_downstream_tasks.py --dataset passkey_retrieval)
// and a needle-in-a-haystack grid. For each prompt length (in the model's own tokens) and needle
// depth, prompts with keys drawn from the seed (experiments/tasks/passkey_prompt.h) are completed greedily
// with the run's attention variant; a sample is correct when the first integer of the generated text
// equals the key.
//   outputs: results.json (accuracy overall, by length, by depth, by cell), samples.jsonl (one line
//            per sample), niah.csv and niah_heatmap.png/.gp (task.grid), all written atomically.
// Under data parallelism replica g takes samples g, g + dp, ...; rank 0 gathers the generated ids
// once and writes the same files as a one-rank run. Resumable: each sample's generated ids go to
// samples.partial.jsonl as it completes (experiments/outputs/record_journal.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "experiments/tasks/passkey_prompt.h"
#include "experiments/tasks/task_base.h"

namespace lminf {

struct PasskeySpec {
  static constexpr const char* kType = "passkey";  // task.type
  std::vector<int64_t> lengths;
  std::vector<double> depths;
  int64_t samples = 10;
  int64_t depth_bins = 10;
  int64_t key_min = 1;
  int64_t key_max = 9999999;
  int64_t max_new_tokens = 7;
  bool bos = true;
  bool grid = true;
  std::string tokenizer;
  std::string task_line = default_passkey_template().task_line;
  std::string filler = default_passkey_template().filler;
  std::string needle = default_passkey_template().needle;
  std::string question = default_passkey_template().question;
  int64_t flush_every = 1;
  template <class V>
  void visit(V& v) {
    v("lengths", lengths, "prompt lengths in the model's tokens (BOS included when task.bos), e.g. [6144, 8192]",
      Required{}, Min{1});
    v("depths", depths,
      "needle depths, fractions of the filler tokens before the needle (0: right after the task line, 1: right "
      "before the question); [] draws each sample's depth uniformly from the seed",
      Min{0}, Max{1});
    v("samples", samples, "samples per (length, depth) cell; per length when task.depths is []", Min{1});
    v("depth_bins", depth_bins, "with random depths: bins of [0, 1] that group them in the results and the grid",
      Min{1});
    v("key_min", key_min, "smallest pass key (keys are uniform in [key_min, key_max]; the original: 1)", Min{0});
    v("key_max", key_max, "largest pass key (the original: 9999999)", Min{0});
    v("max_new_tokens", max_new_tokens, "tokens generated per prompt (greedy; stops early at EOS)", Min{1});
    v("bos", bos, "start every prompt with the tokenizer's BOS token (counted in the length)");
    v("grid", grid, "write the needle-in-a-haystack grid: niah.csv and the heat map niah_heatmap.png (gnuplot)");
    v("tokenizer", tokenizer, "tokenizer folder or file (default: model.path)");
    v("task_line", task_line, "the text that opens the prompt");
    v("filler", filler, "the distractor sentence(s) repeated to fill the haystack");
    v("needle", needle, "the needle; {key} is replaced by the pass key");
    v("question", question, "the text that ends the prompt; the answer is generated after it");
    v("flush_every", flush_every, journal_flush_help("samples"), Min{1});
  }
  // Throws, naming src.file, when keys that are each valid do not go together.
  void check(const SpecSource& src) const;
};

// One sample of the run, in file order: lengths outermost, then depths, then samples.
struct PasskeySample {
  int64_t length = 0;
  int64_t depth_index = -1;  // into task.depths; -1: random depth
  double depth = 0;          // requested
  int64_t key = 0;
};

// The samples of a spec. Each sample's key (and random depth) is a hash of (seed, length, depth
// index, sample index), so changing the other lengths or depths leaves a cell's samples unchanged.
std::vector<PasskeySample> plan_passkey_samples(const PasskeySpec& spec, int64_t seed);

// The depth axis of the results and the grid: task.depths, or with random depths the centres of
// task.depth_bins equal bins of [0, 1].
std::vector<double> passkey_depth_axis(const PasskeySpec& spec);
// The index on that axis of a sample's depth (its bin with random depths; the last bin holds 1).
int64_t passkey_depth_cell(const PasskeySpec& spec, const PasskeySample& s);

struct PasskeyOutcome {
  PasskeySample sample;
  bool correct = false;
};

// accuracy overall, by_length, by_depth and cells (every length x depth, in spec order).
nlohmann::json summarize_passkey(const PasskeySpec& spec, const std::vector<PasskeyOutcome>& outcomes);

// Data parallelism: replica `rank` of `n` takes samples rank, rank + n, ... . Its generated ids are
// packed into rows of [ceil(total / n), max_new_tokens + 1] int64 (column 0: count; -1 padding); the
// rows of all replicas, concatenated in rank order, unpack to per-sample ids in file order.
std::vector<int64_t> passkey_share(int64_t total, int64_t n, int64_t rank);
at::Tensor pack_generated(const std::vector<std::vector<int64_t>>& mine, int64_t total, int64_t n, int64_t max_new);
std::vector<std::vector<int64_t>> unpack_generated(const at::Tensor& all, int64_t total, int64_t n);

class PasskeyTask final : public SpecTask<PasskeySpec> {
 public:
  std::vector<std::string> problems(const ExperimentSpec& spec, const ModelConfig& model) const override;
  std::vector<std::string> outputs() const override;
  bool reads_data() const override { return false; }
  void run(RunContext& ctx) override;
};

}  // namespace lminf
