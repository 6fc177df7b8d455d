// RULER's synthetic tasks (Hsieh et al. 2024, NVIDIA/RULER scripts/data/synthetic) made offline in
// the model's own tokens: every prompt is exactly `length - tokens_to_generate` tokens long (BOS
// counted), so prompt and answer fill `length` exactly.
//
//   ids = [BOS] head  context  tail            head: the template up to the context (with a few-shot
//                |<- F haystack tokens + the     example for vt and cwe), tail: the rest of the
//                    needles ->|                 template and RULER's answer prefix
//
// The context is a stream of haystack units (a noise sentence, a word of a text, a distractor
// needle, a numbered list item, a coded word, a document), each tokenized on its own
// (experiments/tasks/prompt_pieces.h), cut at a token boundary after exactly F = length - tokens to
// generate - (every other token) haystack tokens. Needles (niah, vt's assignments) go in between
// units, at the unit boundary nearest to depth * F haystack tokens. Depths are distinct points of an
// evenly spaced grid of [0, 1] (RULER: 40 points), drawn per sample. Every random choice comes from a
// stream of (seed, task, length, sample index) (experiments/tasks/sample_rng.h).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "experiments/tasks/prompt_pieces.h"
#include "framework/text/tokenizer.h"

namespace lminf {

enum class RulerKind { kNiah, kVt, kCwe, kFwe, kQa };

// One of RULER's 13 tasks (scripts/synthetic.yaml, with the generation lengths of
// scripts/data/synthetic/constants.py and the metrics of scripts/eval/synthetic/constants.py).
struct RulerTaskDef {
  std::string name;
  RulerKind kind = RulerKind::kNiah;
  std::string haystack;              // niah: "noise", "text" (RULER's essays) or "needle"
  std::string key_type, value_type;  // niah: "words", "numbers" or "uuids"
  int64_t num_k = 1, num_v = 1, num_q = 1;  // niah: keys, values per key, keys asked for
  std::string dataset;               // qa: "squad" or "hotpotqa"
  int64_t tokens_to_generate = 0;
  bool match_part = false;           // scored by string_match_part (qa) instead of string_match_all
};

// The 13 tasks in RULER's order.
const std::vector<RulerTaskDef>& ruler_task_defs();
const RulerTaskDef& ruler_task_def(const std::string& name);  // throws for an unknown name
std::vector<std::string> ruler_task_names();

// The task keys that shape the prompts (docs/yaml.md, task.type: ruler).
struct RulerOptions {
  bool bos = true;
  int64_t depth_points = 40;
  int64_t vt_num_chains = 1, vt_num_hops = 4, vt_example_length = 500;
  int64_t cwe_num_cw = 10, cwe_freq_cw = 30, cwe_freq_ucw = 3, cwe_short_below = 4096;
  double fwe_alpha = 2.0;
  int64_t fwe_vocab_size = 0;
};

// A SQuAD- or HotpotQA-style set: the documents and the questions, each with its gold documents
// (and, for SQuAD, the other paragraphs of its article, RULER's more_context).
struct QaItem {
  std::string question;
  std::vector<std::string> answers;
  std::vector<int64_t> gold, related;  // indices into QaSet::docs
};
struct QaSet {
  std::vector<std::string> docs;
  std::vector<QaItem> items;
};
// SQuAD JSON ({"data": [{"paragraphs": [{"context", "qas": [{"question", "answers": [{"text"}],
// "is_impossible"}]}]}]}; impossible questions dropped) and HotpotQA JSON ([{"question", "answer",
// "context": [[title, [sentences]]]}], a document is title + "\n" + the joined sentences).
QaSet read_squad(const std::filesystem::path& path);
QaSet read_hotpotqa(const std::filesystem::path& path);

// The words of a word list (one a line, e.g. /usr/share/dict/words): lowercase ASCII words of 3 to
// 12 letters, in file order, duplicates dropped.
std::vector<std::string> read_word_list(const std::filesystem::path& path);
// The whitespace-separated words of a text file, or of every *.txt file of a folder (sorted by name).
std::vector<std::string> read_text_words(const std::filesystem::path& path);

// What the generators read besides the tokenizer.
struct RulerResources {
  std::vector<std::string> words;           // keys, word values, common words (cwe)
  std::vector<std::string> haystack_words;  // the text haystack
  std::shared_ptr<const QaSet> squad, hotpotqa;
};

struct RulerPrompt {
  std::vector<int64_t> ids;             // length - tokens_to_generate tokens
  std::vector<std::string> references;  // what the answer must contain
  std::string query;
  int64_t haystack_start = 0;           // index of the context's first token
  int64_t haystack_tokens = 0;          // F: context tokens that are not needles
  std::vector<int64_t> needle_starts;   // index in ids of each needle's first token, in prompt order
  std::vector<int64_t> needle_tokens;
  std::vector<int64_t> needle_offsets;  // haystack tokens before each needle (a unit boundary)
  std::vector<double> needle_depths;    // the depths asked for
  std::vector<std::string> needles;     // the needles' texts
};

// Riemann zeta(s) for s > 1 (Euler-Maclaurin): the normaliser of fwe's Zipf counts.
double riemann_zeta(double s);
// fwe's counts for `num_words` words over ranks 1..vocab: floor(num_words * k^-alpha / zeta(alpha)).
std::vector<int64_t> zipf_counts(int64_t num_words, int64_t vocab, double alpha);
// A random UUID of version 4 (RFC 4122 layout, lowercase hex), as Python's uuid.UUID(int=..., version=4).
std::string uuid4_text(uint64_t hi, uint64_t lo);

class RulerPromptBuilder {
 public:
  // `tok` and `res` must outlive the builder.
  RulerPromptBuilder(const Tokenizer& tok, RulerOptions opts, const RulerResources& res);
  ~RulerPromptBuilder();

  // The prompt of sample `sample` of `task` at `length` with room for `gen` generated tokens, drawn
  // from the stream `seed`. Throws, naming task.lengths (or the key at fault) and the shortest length,
  // when the length cannot hold the template, the needles and the tokens to generate.
  RulerPrompt build(const RulerTaskDef& task, int64_t length, int64_t gen, int64_t sample, uint64_t seed) const;
  // Tokens of everything but the haystack for this sample, plus `gen`: the shortest length it fits.
  int64_t shortest_length(const RulerTaskDef& task, int64_t length, int64_t gen, int64_t sample, uint64_t seed) const;

  struct Layout;  // what a sample's prompt is made of (ruler_prompt.cpp)
  struct Cache;   // token ids of repeated pieces

 private:
  PromptPieces pieces_;
  RulerOptions opts_;
  const RulerResources& res_;
  std::unique_ptr<Cache> cache_;
};

// The seed of a sample's stream: a hash of (seed, task name, length, sample index).
uint64_t ruler_sample_seed(int64_t seed, const std::string& task, int64_t length, int64_t sample);

}  // namespace lminf
