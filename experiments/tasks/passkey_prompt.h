// Passkey-retrieval prompts of an exact token length with the needle at an exact depth (LM-Infinite's
// data/passkey_retrieval, spec 5.2, without its length bug: there the task line counted as 2 tokens,
// so prompts were longer than asked).
//
//   ids = [BOS] task_line  filler...filler  needle(key)  filler...filler  question
//                          |<-- a tokens -->|             |<-- F - a -->|
//   F = length - (BOS + task_line + needle + question tokens), a = round(depth * F)
//
// Each part is tokenized on its own (the model's tokenizer, no special tokens) and the ids are
// concatenated, so the length is exact whatever the tokenizer merges across a boundary. The filler
// is the filler sentence's tokens repeated and cut at a token boundary to the count needed (before
// the needle and before the question); the part after the needle starts with a whole sentence.
// BOS, when used, is counted in the length. How the parts are joined: experiments/tasks/prompt_pieces.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "experiments/tasks/prompt_pieces.h"
#include "framework/text/tokenizer.h"

namespace lminf {

struct PasskeyTemplate {
  std::string task_line;
  std::string filler;
  std::string needle;    // holds "{key}" at least once; every occurrence becomes the key
  std::string question;  // ends the prompt; the answer follows it
};

// The original's strings (TASK_PREFIX, DEFAULT_CONTENT, KEY_CONTENT, and the question it appends).
PasskeyTemplate default_passkey_template();

// "The pass key is 123. Remember it. 123 is the pass key." for key 123.
std::string passkey_needle_text(const std::string& needle_template, int64_t key);

struct PasskeyPrompt {
  std::vector<int64_t> ids;  // exactly the requested length
  int64_t haystack_start = 0;  // index of the first filler token (after BOS and the task line)
  int64_t haystack_tokens = 0;  // F: filler tokens, before and after the needle together
  int64_t needle_start = 0;    // index in ids of the needle's first token = haystack_start + a
  int64_t needle_tokens = 0;
  double depth = 0;            // realised: a / F (0 when F = 0)
  // Tokens from the needle's end to the prompt's end (the original's "distance till end").
  int64_t needle_distance() const { return static_cast<int64_t>(ids.size()) - needle_start - needle_tokens; }
};

class PasskeyPromptBuilder {
 public:
  // `tok` must outlive the builder. bos: start with tok.bos_id() (an Error when it has none).
  PasskeyPromptBuilder(const Tokenizer& tok, PasskeyTemplate t, bool bos);

  // The prompt of `length` tokens with the needle for `key` at depth in [0, 1]. Throws when the
  // length cannot hold the task line, the needle and the question (saying the shortest length).
  PasskeyPrompt build(int64_t length, double depth, int64_t key) const;

  // Tokens of everything but the filler for this key (BOS, task line, needle, question).
  int64_t fixed_tokens(int64_t key) const;
  // The token ids of one part as placed in the prompt (`first`: the part that opens the text).
  std::vector<int64_t> part(const std::string& text, bool first) const { return pieces_.part(text, first); }
  bool pieces_self_separate() const { return pieces_.self_separate(); }

 private:
  std::vector<int64_t> filler_run(int64_t n) const;  // n filler tokens from the start of a sentence

  const Tokenizer& tok_;
  PromptPieces pieces_;
  PasskeyTemplate t_;
  bool bos_;
  std::vector<int64_t> task_ids_, filler_ids_, question_ids_;
};

// The answer of a generated text: its first run of ASCII digits (first_integer,
// experiments/tasks/generation_common.h) without leading zeros ("0" for a run of zeros), as the original's
// int(re.findall(r"\d+", text)[0]); nullopt when the text holds no digit.
std::optional<std::string> passkey_answer(const std::string& text);

// Whether the first integer of `generated` equals `key` (no integer: wrong).
bool passkey_correct(const std::string& generated, int64_t key);

}  // namespace lminf
