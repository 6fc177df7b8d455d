// Byte-pair encoding of one pre-tokenized word: the model of Hugging Face "BPE" tokenizer.json
// files (byte-level GPT-2/NeoX/Llama-3 vocabularies and SentencePiece-style Llama-2 vocabularies).
//   1. The word is split into characters (code points); each becomes its vocabulary id. A character
//      missing from the vocabulary becomes its UTF-8 bytes as <0xNN> tokens when byte_fallback is
//      set, else the unknown token (consecutive unknowns fused into one when fuse_unk), else an error.
//   2. Adjacent pairs are merged, always the pair of lowest merge rank first, leftmost on ties, until
//      no adjacent pair has a merge.
//   3. ignore_merges: a word that is itself in the vocabulary is that one token (Llama-3).
// Linear-time symbol list with a priority queue, so a whole document as one word (Llama-2's
// tokenizer.json has no pre-tokenizer) costs O(n log n).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace lminf {

struct BpeOptions {
  bool byte_fallback = false;  // unknown characters -> <0xNN> byte tokens
  bool fuse_unk = false;       // consecutive unknown characters -> one unknown token
  bool ignore_merges = false;  // a word found whole in the vocabulary is one token
  int64_t unk_id = -1;         // the unknown token (-1: none; an unknown character is then an error)
};

class BpeModel {
 public:
  // vocab: token -> id; merges: (left, right) in rank order (rank = index). Both sides and the merged
  // token must be in the vocabulary (Error naming `where` and the merge otherwise).
  BpeModel(std::unordered_map<std::string, int64_t> vocab, const std::vector<std::pair<std::string, std::string>>& merges,
           const BpeOptions& options, const std::string& where);

  // Appends the ids of `word` (valid UTF-8, non-empty) to `out`.
  void tokenize(std::string_view word, std::vector<int64_t>& out) const;

  // -1 when absent.
  int64_t token_to_id(std::string_view token) const;
  const std::unordered_map<std::string, int64_t>& vocab() const { return vocab_; }
  size_t n_merges() const { return merges_.size(); }
  const BpeOptions& options() const { return options_; }

 private:
  struct Merge {
    int32_t rank;
    int64_t new_id;
  };
  static uint64_t pair_key(int64_t a, int64_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint64_t>(b); }

  std::unordered_map<std::string, int64_t> vocab_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::vector<int64_t> byte_ids_;  // <0xNN> ids (byte_fallback), -1 where absent
  BpeOptions options_;
  std::string where_;
};

}  // namespace lminf
