#include "framework/text/bpe.h"

#include <cstdio>
#include <queue>

#include "framework/core/error.h"
#include "framework/core/utf8.h"
#include "framework/transformer/model_config.h"

namespace lminf {

BpeModel::BpeModel(std::unordered_map<std::string, int64_t> vocab,
                   const std::vector<std::pair<std::string, std::string>>& merges, const BpeOptions& options,
                   const std::string& where)
    : vocab_(std::move(vocab)), options_(options), where_(where) {
  for (const auto& [tok, id] : vocab_)
    if (id < 0 || id >= kMaxVocab)
      fail(where, ": model.vocab[\"", tok, "\"] = ", id, " is out of range (ids are 0..", kMaxVocab - 1, ")");
  merges_.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r) {
    const auto& [a, b] = merges[r];
    const int64_t ia = token_to_id(a), ib = token_to_id(b), im = token_to_id(a + b);
    if (ia < 0 || ib < 0 || im < 0)
      fail(where, ": merge ", r, " (\"", a, "\" \"", b, "\") uses a token missing from the vocabulary (\"",
           ia < 0 ? a : ib < 0 ? b : a + b, "\")");
    // A repeated pair keeps its first (lowest) rank, as Hugging Face tokenizers do.
    merges_.emplace(pair_key(ia, ib), Merge{static_cast<int32_t>(r), im});
  }
  if (options_.byte_fallback) {
    byte_ids_.assign(256, -1);
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      byte_ids_[static_cast<size_t>(b)] = token_to_id(name);
    }
  }
}

int64_t BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(std::string(token));
  return it == vocab_.end() ? -1 : it->second;
}

void BpeModel::tokenize(std::string_view word, std::vector<int64_t>& out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    const int64_t id = token_to_id(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  // 1. characters -> initial symbols
  struct Symbol {
    int64_t id;
    int64_t prev, next;  // indices in `sym`, -1 at the ends
    bool alive;
  };
  std::vector<Symbol> sym;
  sym.reserve(word.size());
  bool prev_unk = false;
  auto push = [&](int64_t id) {
    const int64_t n = static_cast<int64_t>(sym.size());
    sym.push_back(Symbol{id, n - 1, -1, true});
    if (n > 0) sym[static_cast<size_t>(n - 1)].next = n;
  };
  size_t i = 0;
  while (i < word.size()) {
    const size_t start = i;
    i += utf8_length(static_cast<unsigned char>(word[i]));
    const std::string_view ch = word.substr(start, i - start);
    const int64_t id = token_to_id(ch);
    if (id >= 0) {
      push(id);
      prev_unk = false;
      continue;
    }
    if (options_.byte_fallback) {
      bool all = true;
      for (char c : ch) all = all && byte_ids_[static_cast<unsigned char>(c)] >= 0;
      if (all) {
        for (char c : ch) push(byte_ids_[static_cast<unsigned char>(c)]);
        prev_unk = false;
        continue;
      }
    }
    if (options_.unk_id < 0)
      fail(where_, ": character \"", std::string(ch), "\" is not in the vocabulary and the model has no unk_token");
    if (!(options_.fuse_unk && prev_unk)) push(options_.unk_id);
    prev_unk = true;
  }

  // 2. merges, lowest rank first, leftmost on ties
  struct Candidate {
    int32_t rank;
    int64_t pos;  // index of the left symbol
    int64_t new_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto consider = [&](int64_t left) {
    if (left < 0) return;
    const int64_t right = sym[static_cast<size_t>(left)].next;
    if (right < 0) return;
    auto it = merges_.find(pair_key(sym[static_cast<size_t>(left)].id, sym[static_cast<size_t>(right)].id));
    if (it != merges_.end()) queue.push(Candidate{it->second.rank, left, it->second.new_id});
  };
  for (int64_t k = 0; k + 1 < static_cast<int64_t>(sym.size()); ++k) consider(k);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& left = sym[static_cast<size_t>(c.pos)];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = sym[static_cast<size_t>(left.next)];
    // Stale entry: the pair at this position changed since it was queued.
    auto it = merges_.find(pair_key(left.id, right.id));
    if (it == merges_.end() || it->second.rank != c.rank || it->second.new_id != c.new_id) continue;
    left.id = c.new_id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) sym[static_cast<size_t>(right.next)].prev = c.pos;
    consider(left.prev);
    consider(c.pos);
  }
  for (int64_t k = sym.empty() ? -1 : 0; k >= 0; k = sym[static_cast<size_t>(k)].next) out.push_back(sym[static_cast<size_t>(k)].id);
}

}  // namespace lminf
