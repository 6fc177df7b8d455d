#include "experiments/tasks/passkey_prompt.h"

#include <cmath>

#include "experiments/tasks/generation_common.h"
#include "framework/core/error.h"

namespace lminf {

PasskeyTemplate default_passkey_template() {
  PasskeyTemplate t;
  t.task_line =
      "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. I will quiz you "
      "about the important information there.";
  t.filler = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
  t.needle = "The pass key is {key}. Remember it. {key} is the pass key.";
  // The trailing space is the original's: SentencePiece tokenizers that split digits (Llama-2, the
  // embedded model) then end the prompt with the word-start piece, so a 7-digit key is exactly the
  // 7 tokens of max_new_tokens.
  t.question = "What is the pass key? The pass key is ";
  return t;
}

std::string passkey_needle_text(const std::string& needle_template, int64_t key) {
  static const std::string kSlot = "{key}";
  const std::string k = std::to_string(key);
  std::string out;
  size_t from = 0;
  for (size_t at; (at = needle_template.find(kSlot, from)) != std::string::npos; from = at + kSlot.size())
    out += needle_template.substr(from, at - from) + k;
  return out + needle_template.substr(from);
}

PasskeyPromptBuilder::PasskeyPromptBuilder(const Tokenizer& tok, PasskeyTemplate t, bool bos)
    : tok_(tok), pieces_(tok), t_(std::move(t)), bos_(bos) {
  if (bos_ && tok_.bos_id() < 0)
    fail("passkey: ", tok_.description(), " has no BOS token (set task.bos: false)");
  if (t_.needle.find("{key}") == std::string::npos)
    fail("passkey: task.needle \"", t_.needle, "\" has no {key} slot (write {key} where the pass key goes)");
  if (t_.filler.empty()) fail("passkey: task.filler is empty (the haystack is made of it)");
  task_ids_ = part(t_.task_line, true);
  filler_ids_ = part(t_.filler, false);
  question_ids_ = part(t_.question, false);
  if (filler_ids_.empty()) fail("passkey: task.filler \"", t_.filler, "\" encodes to no tokens");
}

int64_t PasskeyPromptBuilder::fixed_tokens(int64_t key) const {
  return (bos_ ? 1 : 0) + static_cast<int64_t>(task_ids_.size() + question_ids_.size()) +
         static_cast<int64_t>(part(passkey_needle_text(t_.needle, key), false).size());
}

std::vector<int64_t> PasskeyPromptBuilder::filler_run(int64_t n) const {
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(n));
  const int64_t u = static_cast<int64_t>(filler_ids_.size());
  for (int64_t i = 0; i < n; ++i) out.push_back(filler_ids_[static_cast<size_t>(i % u)]);
  return out;
}

PasskeyPrompt PasskeyPromptBuilder::build(int64_t length, double depth, int64_t key) const {
  if (!(depth >= 0.0 && depth <= 1.0)) fail("passkey: depth ", depth, " is outside [0, 1]");
  const std::vector<int64_t> needle = part(passkey_needle_text(t_.needle, key), false);
  const int64_t fixed = (bos_ ? 1 : 0) + static_cast<int64_t>(task_ids_.size() + needle.size() + question_ids_.size());
  if (length < fixed)
    fail("passkey: a prompt of ", length, " tokens cannot hold the task line, the needle for key ", key,
         " and the question (", fixed, " tokens in ", tok_.description(), "); use task.lengths >= ", fixed);
  PasskeyPrompt p;
  p.haystack_tokens = length - fixed;
  const int64_t a = std::llround(depth * static_cast<double>(p.haystack_tokens));
  p.depth = p.haystack_tokens > 0 ? static_cast<double>(a) / static_cast<double>(p.haystack_tokens) : 0.0;
  auto append = [&](const std::vector<int64_t>& x) { p.ids.insert(p.ids.end(), x.begin(), x.end()); };
  p.ids.reserve(static_cast<size_t>(length));
  if (bos_) p.ids.push_back(tok_.bos_id());
  append(task_ids_);
  p.haystack_start = static_cast<int64_t>(p.ids.size());
  append(filler_run(a));
  p.needle_start = static_cast<int64_t>(p.ids.size());
  p.needle_tokens = static_cast<int64_t>(needle.size());
  append(needle);
  append(filler_run(p.haystack_tokens - a));
  append(question_ids_);
  return p;
}

std::optional<std::string> passkey_answer(const std::string& text) {
  const std::string digits = first_integer(text);
  if (digits.empty()) return std::nullopt;
  const size_t nonzero = digits.find_first_not_of('0');
  return nonzero == std::string::npos ? std::string("0") : digits.substr(nonzero);  // int() drops leading zeros
}

bool passkey_correct(const std::string& generated, int64_t key) {
  const auto got = passkey_answer(generated);
  return got && *got == std::to_string(key);
}

}  // namespace lminf
