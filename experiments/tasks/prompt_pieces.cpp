#include "experiments/tasks/prompt_pieces.h"

namespace lminf {

PromptPieces::PromptPieces(const Tokenizer& tok) : tok_(tok) {
  std::vector<int64_t> ab = tok_.encode("a", false), b = tok_.encode("b", false);
  ab.insert(ab.end(), b.begin(), b.end());
  self_separate_ = tok_.decode(ab, true) == "a b";
}

std::vector<int64_t> PromptPieces::part(const std::string& text, bool first) const {
  if (text.empty()) return {};
  return tok_.encode(first || self_separate_ ? text : " " + text, false);
}

}  // namespace lminf
