// Tokenizer fixtures computed in the tests: a varied multilingual text set, a tiny byte-level BPE
// tokenizer.json learned from text (GPT-2 / GPT-NeoX layouts), and a tiny SentencePiece model
// trained through lminf's shim. Header-only so any test binary can use them.
#pragma once

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "framework/text/hf_tokenizer.h"
#include "framework/text/sentencepiece_tokenizer.h"
#include "framework/text/unicode_regex.h"
#include "framework/core/utf8.h"
#include "support/test_support.h"

namespace lminf::testing {

// Texts that exercise pre-tokenizers, byte fallback and special tokens: Unicode scripts, CJK,
// emoji (ZWJ sequences, flags, skin tones), combining marks, digits, whitespace runs, newlines,
// CRLF, tabs, Unicode spaces, contractions in both cases, and special-token text.
inline std::vector<std::string> multilingual_texts() {
  std::vector<std::string> t = {
      "Hello world",
      " Hello  world ",
      "",
      " ",
      "\n",
      "   \n\n\t  \n",
      "I'm sure they're fine; we'll see. DON'T SHOUT, it's OK'S?",
      "x = 1234567 + 3.14159 - 0042; 10,000,000 and 1e-9, ١٢٣ ٤٥٦ (Arabic-Indic digits) ⅔ ½",
      "a    b\t\tc\n\n\n  d   e\r\nf\r\n\r\n",
      "日本語のテキストです。中文字符，包括标点！한국어 문장도 있습니다.",
      "Ελληνικά και русский текст, עברית ועוד, العربية هنا, हिन्दी में लिखा गया पाठ, ภาษาไทย",
      "emoji: 🤗🚀 👩‍👩‍👧‍👦 👍🏽 🇫🇷🇯🇵 ❤️ ☃",
      "combining: e\xCC\x81 vs \xC3\xA9, n\xCC\x83, A\xCC\x8A; ligature ﬁ; full-width ＡＢＣ１２３",
      "spaces:\xC2\xA0nbsp,\xE3\x80\x80ideographic,\xE2\x80\x83" "em, zero\xE2\x80\x8Bwidth",
      "<s>Hello</s> <s> </s>x",
      "<|begin_of_text|>system<|eot_id|>\n<|start_header_id|>user<|end_header_id|>\n\nHi!",
      "<unk> <0x41> ▁under▁score ▁▁",
      "code:\n\tdef f(x):\n\t\treturn x**2  # square\n\n    if (a && b) { c++; }\n",
      "URL https://example.com/a/b?c=d&e=f#g and e-mail someone@example.org",
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      "trailing spaces and newline   \n",
      "\x01\x02 control \x7f chars",
      "mixed: Ça va? Ünïcödé — “quotes” ‘single’ … «guillemets» ¿qué? ¡sí!",
  };
  // A longer pseudo-random mix of the pieces above, deterministic.
  std::mt19937 rng(7);
  std::string mix;
  const std::vector<std::string> parts = t;
  for (int i = 0; i < 60; ++i) mix += parts[rng() % parts.size()].substr(0, 40) + (rng() % 3 ? " " : "\n");
  // keep it valid UTF-8 (substr may have cut a character)
  while (utf8_invalid_offset(mix) != std::string::npos) mix.erase(utf8_invalid_offset(mix), 1);
  t.push_back(mix);
  return t;
}

// Plain text for training tiny tokenizers: the texts above, repeated with variations.
inline std::string training_corpus() {
  std::string s;
  const auto texts = multilingual_texts();
  const std::vector<std::string> words = {"the", "model", "attention", "long", "context", "token", "length",
                                          "distance", "window", "global", "local", "branch", "perplexity"};
  std::mt19937 rng(3);
  for (int line = 0; line < 400; ++line) {
    const int n = 4 + static_cast<int>(rng() % 12);
    for (int k = 0; k < n; ++k) s += (k ? " " : "") + words[rng() % words.size()];
    if (line % 7 == 0) s += " " + std::to_string(rng() % 100000);
    s += "\n";
  }
  // pseudo-words from syllables, so BPE and unigram training find enough pieces for ~1000 ids
  const std::vector<std::string> syl = {"ka", "ro", "mi", "tel", "un", "sa", "vor", "in", "de", "lu", "pha", "gen",
                                        "ex", "ti", "on", "qua", "zer", "bo", "ly", "ne"};
  for (int line = 0; line < 600; ++line) {
    const int n = 3 + static_cast<int>(rng() % 9);
    for (int k = 0; k < n; ++k) {
      const int len = 1 + static_cast<int>(rng() % 4);
      std::string w;
      for (int q = 0; q < len; ++q) w += syl[rng() % syl.size()];
      s += (k ? " " : "") + w;
    }
    s += "\n";
  }
  for (const auto& x : texts) {
    std::string y = x;
    std::replace(y.begin(), y.end(), '\n', ' ');
    std::replace(y.begin(), y.end(), '\r', ' ');
    if (!y.empty()) s += y + "\n";
  }
  return s;
}

// A byte-level BPE tokenizer.json learned from `corpus` with `n_merges` merges (greedy: the most
// frequent adjacent pair, ties to the smallest pair), pre-tokenized with GPT-2's regex.
//   style "gpt2": ByteLevel pre-tokenizer + decoder, <|endoftext|> special
//   style "neox": adds an NFC normalizer and normalized (non-special) whitespace added tokens
inline nlohmann::json byte_level_tokenizer_json(const std::string& corpus, int n_merges, const std::string& style) {
  const auto& alpha = byte_level_alphabet();
  UnicodeRegex re(R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", "test");
  // distinct words as token-index sequences, with their counts
  std::vector<std::string> tokens(alpha.begin(), alpha.end());
  std::map<std::string, int64_t> word_counts;
  for (const auto& [b, e] : re.find_all(corpus)) ++word_counts[corpus.substr(b, e - b)];
  std::vector<std::pair<std::vector<int>, int64_t>> words;
  for (const auto& [w, c] : word_counts) {
    std::vector<int> x;
    for (char ch : w) x.push_back(static_cast<unsigned char>(ch));
    words.emplace_back(std::move(x), c);
  }
  nlohmann::json vocab = nlohmann::json::object();
  std::map<std::string, int> index;
  for (int b = 0; b < 256; ++b) {
    vocab[alpha[static_cast<size_t>(b)]] = b;
    index[alpha[static_cast<size_t>(b)]] = b;
  }
  int64_t next_id = 256;
  nlohmann::json merges = nlohmann::json::array();
  for (int m = 0; m < n_merges; ++m) {
    std::map<std::pair<int, int>, int64_t> counts;
    for (const auto& [w, c] : words)
      for (size_t i = 0; i + 1 < w.size(); ++i) counts[{w[i], w[i + 1]}] += c;
    if (counts.empty()) break;
    // the most frequent pair; ties to the smallest (left, right) strings
    auto best = counts.begin();
    for (auto it = counts.begin(); it != counts.end(); ++it) {
      const auto key = [&](const auto& p) { return std::make_pair(tokens[static_cast<size_t>(p.first)], tokens[static_cast<size_t>(p.second)]); };
      if (it->second > best->second || (it->second == best->second && key(it->first) < key(best->first))) best = it;
    }
    const auto [a, b] = best->first;
    const std::string merged = tokens[static_cast<size_t>(a)] + tokens[static_cast<size_t>(b)];
    merges.push_back(tokens[static_cast<size_t>(a)] + " " + tokens[static_cast<size_t>(b)]);
    int id;
    if (auto it = index.find(merged); it != index.end()) {
      id = it->second;
    } else {
      id = static_cast<int>(tokens.size());
      tokens.push_back(merged);
      index[merged] = id;
      vocab[merged] = next_id++;
    }
    for (auto& [w, c] : words) {
      std::vector<int> x;
      for (size_t i = 0; i < w.size(); ++i) {
        if (i + 1 < w.size() && w[i] == a && w[i + 1] == b) {
          x.push_back(id);
          ++i;
        } else {
          x.push_back(w[i]);
        }
      }
      w = std::move(x);
    }
  }
  nlohmann::json added = nlohmann::json::array();
  added.push_back({{"id", next_id++}, {"content", "<|endoftext|>"}, {"single_word", false}, {"lstrip", false},
                   {"rstrip", false}, {"normalized", false}, {"special", true}});
  nlohmann::json normalizer = nullptr;
  if (style == "neox") {
    normalizer = {{"type", "NFC"}};
    for (const std::string s : {"    ", "  "})
      added.push_back({{"id", next_id++}, {"content", s}, {"single_word", false}, {"lstrip", false},
                       {"rstrip", false}, {"normalized", true}, {"special", false}});
  }
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", normalizer},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
          {"post_processor", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}}},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"vocab", vocab},
            {"merges", merges}}}};
}

// Trains a SentencePiece model on `corpus` into `dir` (tokenizer.model + tokenizer_config.json).
inline void train_tiny_sentencepiece(const std::filesystem::path& dir, const std::string& corpus, int64_t vocab_size,
                                     const std::string& model_type = "bpe", bool byte_fallback = true) {
  std::filesystem::create_directories(dir);
  write_text(dir / "corpus.txt", corpus);
  SpmTrainOptions o;
  o.inputs = {dir / "corpus.txt"};
  o.output_dir = dir;
  o.vocab_size = vocab_size;
  o.model_type = model_type;
  o.byte_fallback = byte_fallback;
  o.character_coverage = 1.0;
  o.num_threads = 1;
  train_sentencepiece(o);
  std::filesystem::remove(dir / "corpus.txt");
}

}  // namespace lminf::testing
