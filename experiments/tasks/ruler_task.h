// Task `ruler`: RULER's synthetic long-context suite (Hsieh et al. 2024, "RULER: What's the Real
// Context Size of Your Long-Context Language Models?"; NVIDIA/RULER) made offline in the model's own
// tokens (experiments/tasks/ruler_prompt.h) and scored as RULER scores it (ruler_score.h). For each
// task of task.tasks, each length and each of task.num_samples samples, the prompt fills the length
// exactly with room for the task's tokens to generate; the answer is generated greedily with the
// run's attention variant and scored against the sample's references.
//   outputs: results.json (scores by task x length, the average per length, the effective length),
//            samples.jsonl (one line per sample), ruler.csv and the heat map ruler_heatmap.png/.svg/.gp
//            (task.grid), all written atomically.
// Under data parallelism replica g takes samples g, g + dp, ...; rank 0 merges the records and writes
// the same files as a one-rank run. Resumable: each sample's record goes to samples.partial.jsonl as
// it completes (experiments/outputs/record_journal.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "experiments/tasks/ruler_prompt.h"
#include "experiments/tasks/task_base.h"

namespace lminf {

struct RulerSpec {
  static constexpr const char* kType = "ruler";  // task.type
  std::vector<std::string> tasks = ruler_task_names();
  std::vector<int64_t> lengths;
  int64_t num_samples = 10;
  double threshold = 85.6;
  int64_t max_new_tokens = 0;
  bool bos = true;
  std::string tokenizer;
  int64_t depth_points = 40;
  std::string haystack = "build/corpus/heldout";
  std::string words_file = "/usr/share/dict/words";
  std::string squad, hotpotqa;
  int64_t vt_num_chains = 1, vt_num_hops = 4, vt_example_length = 500;
  int64_t cwe_num_cw = 10, cwe_freq_cw = 30, cwe_freq_ucw = 3, cwe_short_below = 4096;
  double fwe_alpha = 2.0;
  int64_t fwe_vocab_size = 0;
  bool grid = true;
  int64_t flush_every = 1;
  template <class V>
  void visit(V& v) {
    v("tasks", tasks, "RULER tasks to run (default: all 13; qa_1/qa_2 are skipped without task.squad/task.hotpotqa)",
      Choices(ruler_task_names()));
    v("lengths", lengths, "prompt lengths in the model's tokens, the tokens to generate included, e.g. [4096, 8192]",
      Required{}, Min{1});
    v("num_samples", num_samples, "samples per task and length", Min{1});
    v("threshold", threshold,
      "effective length: the largest length up to which the average score (0-100) stays >= this (RULER: 85.6, "
      "Llama-2-7B's 4K average)",
      Min{0}, Max{100});
    v("max_new_tokens", max_new_tokens,
      "tokens generated per prompt (greedy; stops at EOS); 0: RULER's per task (niah 128, vt 30, cwe 120, fwe 50, qa 32)",
      Min{0});
    v("bos", bos, "start every prompt with the tokenizer's BOS token (counted in the length)");
    v("tokenizer", tokenizer, "tokenizer folder or file (default: model.path)");
    v("depth_points", depth_points, "needle depths are distinct points of this many evenly spaced in [0, 1] (RULER: 40)",
      Min{1});
    v("haystack", haystack,
      "text file, or folder of *.txt files, of the text haystack (niah_single_2/3, multikey_1, multivalue, "
      "multiquery); default: the GNU-manual corpus of scripts/make_corpus.sh build/corpus");
    v("words_file", words_file, "word list, one word a line (Debian wamerican): keys, word values, cwe's words");
    v("squad", squad, "SQuAD-style JSON file for qa_1 (\"\": qa_1 is skipped)");
    v("hotpotqa", hotpotqa, "HotpotQA-style JSON file for qa_2 (\"\": qa_2 is skipped)");
    v("vt_num_chains", vt_num_chains, "vt: chains of variable assignments (the first is asked for)", Min{1});
    v("vt_num_hops", vt_num_hops, "vt: assignments after a chain's value (VAR B = VAR A ...)", Min{1});
    v("vt_example_length", vt_example_length, "vt: tokens of the one-shot example before the prompt (0: none)", Min{0});
    v("cwe_num_cw", cwe_num_cw, "cwe: common words (the answer)", Min{1});
    v("cwe_freq_cw", cwe_freq_cw, "cwe: repeats of each common word (lengths >= cwe_short_below)", Min{1});
    v("cwe_freq_ucw", cwe_freq_ucw, "cwe: repeats of each other word (lengths >= cwe_short_below)", Min{1});
    v("cwe_short_below", cwe_short_below,
      "cwe: lengths below this use RULER's short setting (repeats 6 and 1, a 20-word example)", Min{0});
    v("fwe_alpha", fwe_alpha, "fwe: Zipf exponent of the coded words' counts (> 1)", Min{1});
    v("fwe_vocab_size", fwe_vocab_size, "fwe: coded words (0: (length - tokens to generate) / 50, at least 4)", Min{0});
    v("grid", grid, "write ruler.csv and the heat map ruler_heatmap.png/.svg (gnuplot): score by task x length");
    v("flush_every", flush_every, journal_flush_help("samples"), Min{1});
  }
  // Throws, naming src.file, when keys that are each valid do not go together.
  void check(const SpecSource& src) const;
  RulerOptions options() const;
  // The tasks that run: task.tasks less the qa tasks without a data file.
  std::vector<std::string> active_tasks() const;
};

// One sample of the run, in file order: tasks outermost, then lengths, then samples.
struct RulerSample {
  const RulerTaskDef* task = nullptr;
  int64_t length = 0;
  int64_t sample = 0;
  int64_t gen = 0;    // tokens to generate
  uint64_t seed = 0;  // its stream (ruler_sample_seed)
};
std::vector<RulerSample> plan_ruler_samples(const RulerSpec& spec, int64_t seed);

// The resources the active tasks read (word list, text haystack, QA sets); throws naming the key.
RulerResources load_ruler_resources(const RulerSpec& spec);

// A sample's record from its prompt and generated text: references, prediction, score in [0, 1].
nlohmann::json ruler_record(int64_t index, const RulerSample& s, const RulerPrompt& p, const std::string& generated,
                            const std::vector<int64_t>& generated_ids);

class RulerTask final : public SpecTask<RulerSpec> {
 public:
  std::vector<std::string> problems(const ExperimentSpec& spec, const ModelConfig& model) const override;
  std::vector<std::string> outputs() const override;
  bool reads_data() const override { return false; }
  void run(RunContext& ctx) override;
};

}  // namespace lminf
