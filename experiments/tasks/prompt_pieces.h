// Prompts assembled from separately tokenized pieces, so that a prompt's length in the model's own
// tokens is exact whatever the tokenizer merges across a boundary (tasks passkey and ruler).
// SentencePiece tokenizers put a word-start marker on every separately encoded piece (the dummy
// prefix), so their pieces decode joined by a space by themselves; for the others (byte-level BPE)
// every piece after the first is encoded as " " + text.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/text/tokenizer.h"

namespace lminf {

class PromptPieces {
 public:
  explicit PromptPieces(const Tokenizer& tok);  // `tok` must outlive this
  // The token ids of one piece as placed in a prompt (`first`: the piece that opens the text).
  std::vector<int64_t> part(const std::string& text, bool first) const;
  bool self_separate() const { return self_separate_; }
  const Tokenizer& tokenizer() const { return tok_; }

 private:
  const Tokenizer& tok_;
  bool self_separate_;
};

}  // namespace lminf
