// Tokenizer pieces against plain references: UTF-8 handling, truncation, the BPE merge loop (heap
// version vs the quadratic textbook loop on random inputs), tokenizer.json features, and the errors
// for bad tokenizer files. Golden encodings of real vocabularies are in tests/tokenizer_goldens/.
#include <gtest/gtest.h>

#include <random>

#include "framework/text/bpe.h"
#include "framework/core/error.h"
#include "framework/text/hf_tokenizer.h"
#include "framework/transformer/model_config.h"
#include "experiments/data/token_data.h"
#include "framework/text/tokenizer.h"
#include "framework/core/utf8.h"
#include "support/test_support.h"
#include "support/tokenizer_fixtures.h"

namespace lminf {
namespace {
using lminf::testing::error_of;
using lminf::testing::TempDir;
using lminf::testing::write_text;
using json = nlohmann::json;

// ---- UTF-8 ------------------------------------------------------------------------------------

TEST(Utf8, FindsTheFirstIllFormedByte) {
  EXPECT_EQ(utf8_invalid_offset("plain ascii"), std::string_view::npos);
  EXPECT_EQ(utf8_invalid_offset("h\xC3\xA9llo \xF0\x9F\xA4\x97"), std::string_view::npos);
  EXPECT_EQ(utf8_invalid_offset("ab\xFF"), 2u);
  EXPECT_EQ(utf8_invalid_offset("ab\xC0\xAF"), 2u);           // overlong '/'
  EXPECT_EQ(utf8_invalid_offset("a\xED\xA0\x80"), 1u);        // surrogate D800
  EXPECT_EQ(utf8_invalid_offset("a\xF4\x90\x80\x80"), 1u);    // above U+10FFFF
  EXPECT_EQ(utf8_invalid_offset("abc\xE6\x97"), 3u);          // truncated at the end
  EXPECT_EQ(utf8_invalid_offset("\x80"), 0u);                 // lone continuation
  const std::string e = error_of([] { check_utf8("ok\xFEno", "input.txt"); });
  EXPECT_NE(e.find("input.txt: invalid UTF-8 at byte 2"), std::string::npos) << e;
}

TEST(Utf8, LossyReplacesMaximalSubparts) {
  // Unicode's "U+FFFD substitution of maximal subparts" (Rust from_utf8_lossy, WHATWG TextDecoder)
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(utf8_lossy("a\xF0\x9F\xA4" "b"), "a" + r + "b");      // one truncated sequence: one U+FFFD
  EXPECT_EQ(utf8_lossy("\xC0\xAF"), r + r);                       // C0 is never valid: two
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), r + r + r);               // surrogate: three
  EXPECT_EQ(utf8_lossy("\xE6\x97\xA5\xE6"), "\xE6\x97\xA5" + r);
  EXPECT_EQ(utf8_lossy("fine \xE2\x98\x83"), "fine \xE2\x98\x83");
}

TEST(Utf8, RoundTripsEveryCodePointClass) {
  std::string s;
  for (char32_t cp : {U'a', U'\u00e9', U'\u20ac', U'\U0001F917', U'\U0010FFFF'}) utf8_append(s, cp);
  size_t i = 0;
  std::vector<char32_t> back;
  while (i < s.size()) back.push_back(utf8_next(s, i));
  EXPECT_EQ(back, (std::vector<char32_t>{U'a', U'\u00e9', U'\u20ac', U'\U0001F917', U'\U0010FFFF'}));
}

// ---- truncation (spec 2.10) -------------------------------------------------------------------

// Python's ids[:m], ids[-m:], ids[:m//2] + ids[-m//2:] written out with Python's floor division.
std::vector<int64_t> python_truncate(const std::vector<int64_t>& ids, int64_t m, const std::string& mode) {
  const int64_t n = static_cast<int64_t>(ids.size());
  if (n <= m) return ids;
  auto slice = [&](int64_t b, int64_t e) {  // ids[b:e], negative indices from the end
    if (b < 0) b += n;
    if (e < 0) e += n;
    b = std::clamp<int64_t>(b, 0, n);
    e = std::clamp<int64_t>(e, 0, n);
    return std::vector<int64_t>(ids.begin() + b, ids.begin() + std::max(b, e));
  };
  auto floordiv = [](int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); };
  if (mode == "right") return slice(0, m);
  if (mode == "left") return slice(-m, n);
  auto head = slice(0, floordiv(m, 2));
  auto tail = slice(floordiv(-m, 2), n);
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

TEST(Truncation, MatchesPythonSlicingForEveryModeAndParity) {
  for (int64_t n : {1, 2, 5, 10, 11}) {
    std::vector<int64_t> ids(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = 100 + i;
    for (int64_t m = 1; m <= 12; ++m) {
      for (const std::string mode : {"left", "right", "center"}) {
        std::vector<int64_t> got = ids;
        truncate_tokens(got, m, mode);
        EXPECT_EQ(got, python_truncate(ids, m, mode)) << "n=" << n << " m=" << m << " " << mode;
        EXPECT_EQ(static_cast<int64_t>(got.size()), std::min(n, m));
      }
    }
  }
  std::vector<int64_t> seven = {1, 2, 3, 4, 5, 6, 7};
  truncate_tokens(seven, 5, "center");  // first 5//2 = 2, last ceil(5/2) = 3
  EXPECT_EQ(seven, (std::vector<int64_t>{1, 2, 5, 6, 7}));
  std::vector<int64_t> x = {1, 2, 3};
  EXPECT_NE(error_of([&] { truncate_tokens(x, 2, "middle"); }).find("left, right, center"), std::string::npos);
}

// ---- BPE --------------------------------------------------------------------------------------

// The textbook loop: find the adjacent pair of lowest rank (leftmost on ties), merge it, repeat.
std::vector<std::string> reference_bpe(const std::vector<std::string>& chars,
                                       const std::vector<std::pair<std::string, std::string>>& merges) {
  std::vector<std::string> s = chars;
  while (true) {
    size_t best_rank = merges.size(), best_pos = 0;
    for (size_t i = 0; i + 1 < s.size(); ++i)
      for (size_t r = 0; r < best_rank; ++r)
        if (merges[r].first == s[i] && merges[r].second == s[i + 1]) {
          best_rank = r;
          best_pos = i;
          break;
        }
    if (best_rank == merges.size()) return s;
    s[best_pos] += s[best_pos + 1];
    s.erase(s.begin() + static_cast<std::ptrdiff_t>(best_pos) + 1);
  }
}

TEST(Bpe, HeapMergeLoopMatchesTheTextbookLoopOnRandomWords) {
  std::mt19937 rng(11);
  const std::vector<std::string> alphabet = {"a", "b", "c", "\xC3\xA9", "\xE6\x97\xA5"};
  for (int trial = 0; trial < 40; ++trial) {
    // random merges over the alphabet and earlier merge results
    std::unordered_map<std::string, int64_t> vocab;
    std::vector<std::string> tokens = alphabet;
    for (const auto& a : alphabet) vocab.emplace(a, static_cast<int64_t>(vocab.size()));
    std::vector<std::pair<std::string, std::string>> merges;
    const int n_merges = 3 + static_cast<int>(rng() % 25);
    for (int m = 0; m < n_merges; ++m) {
      const std::string l = tokens[rng() % tokens.size()], r = tokens[rng() % tokens.size()];
      if (l.size() + r.size() > 12) continue;
      merges.emplace_back(l, r);
      if (vocab.emplace(l + r, static_cast<int64_t>(vocab.size())).second) tokens.push_back(l + r);
    }
    BpeModel model(vocab, merges, BpeOptions{}, "test");
    for (int w = 0; w < 20; ++w) {
      std::vector<std::string> chars;
      std::string word;
      const int len = 1 + static_cast<int>(rng() % 37);
      for (int k = 0; k < len; ++k) {
        chars.push_back(alphabet[rng() % alphabet.size()]);
        word += chars.back();
      }
      std::vector<int64_t> ids;
      model.tokenize(word, ids);
      std::vector<int64_t> expected;
      for (const auto& t : reference_bpe(chars, merges)) expected.push_back(vocab.at(t));
      ASSERT_EQ(ids, expected) << "trial " << trial << " word " << word;
    }
  }
}

TEST(Bpe, ByteFallbackUnknownAndIgnoreMerges) {
  std::unordered_map<std::string, int64_t> vocab = {{"<unk>", 0}, {"a", 1}, {"b", 2}, {"ab", 3}, {"abab", 4}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    vocab.emplace(name, 10 + b);
  }
  std::vector<std::pair<std::string, std::string>> merges = {{"a", "b"}};
  BpeOptions o;
  o.unk_id = 0;
  o.byte_fallback = true;
  std::vector<int64_t> ids;
  BpeModel(vocab, merges, o, "t").tokenize("ab\xC3\xA9x", ids);
  EXPECT_EQ(ids, (std::vector<int64_t>{3, 10 + 0xC3, 10 + 0xA9, 10 + 'x'}));
  o.byte_fallback = false;
  o.fuse_unk = true;
  ids.clear();
  BpeModel(vocab, merges, o, "t").tokenize("a\xC3\xA9xyb", ids);
  EXPECT_EQ(ids, (std::vector<int64_t>{1, 0, 2}));
  o.ignore_merges = true;
  ids.clear();
  BpeModel(vocab, merges, o, "t").tokenize("abab", ids);  // no merge makes "abab", but it is in the vocabulary
  EXPECT_EQ(ids, (std::vector<int64_t>{4}));
  const std::string e = error_of([&] { BpeModel(vocab, {{"a", "z"}}, o, "tok.json"); });
  EXPECT_NE(e.find("tok.json: merge 0"), std::string::npos) << e;
}

// ---- tokenizer.json ---------------------------------------------------------------------------

std::unique_ptr<HfTokenizer> from_json(const json& j, TokenizerConfig c = {}) {
  return HfTokenizer::from_json(j, c, "test tokenizer.json");
}

TEST(HfTokenizer, ByteLevelRoundTripsAnyText) {
  const json j = lminf::testing::byte_level_tokenizer_json(lminf::testing::training_corpus(), 300, "gpt2");
  auto tok = from_json(j);
  EXPECT_TRUE(tok->round_trips());
  EXPECT_GT(tok->vocab_size(), 256 + 200);
  for (const auto& text : lminf::testing::multilingual_texts()) {
    const auto ids = tok->encode(text, false);
    EXPECT_EQ(tok->decode(ids), text);
    for (int64_t id : ids) ASSERT_LT(id, tok->vocab_size());
  }
  // the special token written in the text is one token; merges make common words one token
  const auto ids = tok->encode("the model<|endoftext|>", false);
  EXPECT_EQ(ids.back(), tok->token_to_id("<|endoftext|>"));
  EXPECT_EQ(tok->decode(ids, /*skip_special=*/true), "the model");
  EXPECT_LT(tok->encode(" attention attention attention", false).size(), 8u);
}

TEST(HfTokenizer, AddBosFromConfigOrTemplate) {
  json j = lminf::testing::byte_level_tokenizer_json("hello world", 5, "gpt2");
  const int64_t eot = from_json(j)->token_to_id("<|endoftext|>");
  TokenizerConfig c;
  c.bos_token = "<|endoftext|>";
  c.eos_token = "<|endoftext|>";
  EXPECT_EQ(from_json(j, c)->encode("hi", true).size(), 2u);  // post_processor ByteLevel adds nothing
  c.add_bos_token = true;
  c.add_eos_token = true;
  auto ids = from_json(j, c)->encode("hi", true);
  EXPECT_EQ(ids.front(), eot);
  EXPECT_EQ(ids.back(), eot);
  EXPECT_EQ(from_json(j, c)->bos_id(), eot);
  TokenizerConfig none;
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", json::array({{{"SpecialToken", {{"id", "<|endoftext|>"}, {"type_id", 0}}}},
                                                 {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
                         {"special_tokens", {{"<|endoftext|>", {{"id", "<|endoftext|>"}, {"ids", {eot}}}}}}};
  ids = from_json(j, none)->encode("hi", true);
  EXPECT_EQ(ids.front(), eot);
  EXPECT_EQ(from_json(j, none)->encode("hi", false).size(), 2u);
}

// A SentencePiece-style tokenizer.json (Llama-2 layout) over a small vocabulary.
json llama2_style_json() {
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    vocab[name] = 3 + b;
  }
  int64_t id = 259;
  for (const std::string t : {"\xE2\x96\x81", "h", "e", "l", "o", "w", "r", "d", "\xE2\x96\x81h", "el", "ll", "lo",
                              "\xE2\x96\x81w", "or", "ld", "\xE2\x96\x81he", "llo", "\xE2\x96\x81hello", "orld",
                              "\xE2\x96\x81world", "\xE2\x96\x81\xE2\x96\x81"})
    vocab[t] = id++;
  json merges = json::array({"\xE2\x96\x81 h", "l l", "\xE2\x96\x81h e", "ll o", "\xE2\x96\x81he llo", "\xE2\x96\x81 w",
                             "o r", "or ld", "\xE2\x96\x81w orld", "\xE2\x96\x81 \xE2\x96\x81", "e l", "l o", "l d"});
  return {{"version", "1.0"},
          {"added_tokens",
           json::array({{{"id", 0}, {"content", "<unk>"}, {"special", true}, {"normalized", false}},
                        {{"id", 1}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
                        {{"id", 2}, {"content", "</s>"}, {"special", true}, {"normalized", false}}})},
          {"normalizer",
           {{"type", "Sequence"},
            {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                                         {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}}})}}},
          {"pre_tokenizer", nullptr},
          {"post_processor",
           {{"type", "TemplateProcessing"},
            {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
            {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}}},
          {"decoder",
           {{"type", "Sequence"},
            {"decoders", json::array({{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                                      {{"type", "ByteFallback"}},
                                      {{"type", "Fuse"}},
                                      {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}}},
          {"model",
           {{"type", "BPE"}, {"unk_token", "<unk>"}, {"fuse_unk", true}, {"byte_fallback", true}, {"vocab", vocab}, {"merges", merges}}}};
}

TEST(HfTokenizer, SentencePieceStyleBpeWithByteFallback) {
  auto tok = from_json(llama2_style_json());
  const int64_t hello = tok->token_to_id("\xE2\x96\x81hello"), world = tok->token_to_id("\xE2\x96\x81world");
  EXPECT_EQ(tok->encode("hello world", true), (std::vector<int64_t>{1, hello, world}));
  // byte fallback for characters outside the vocabulary: the UTF-8 bytes of é are <0xC3> <0xA9>
  const auto ids = tok->encode("h\xC3\xA9", false);
  EXPECT_EQ(std::vector<int64_t>(ids.end() - 2, ids.end()), (std::vector<int64_t>{3 + 0xC3, 3 + 0xA9}));
  EXPECT_TRUE(tok->round_trips());
  for (const std::string s : {"hello world", " hello  world ", "\xF0\x9F\xA4\x97 hello\n", "", "  "})
    EXPECT_EQ(tok->decode(tok->encode(s, false)), s) << s;
  // special tokens in the text; a lone byte token that is not UTF-8 decodes to U+FFFD
  EXPECT_EQ(tok->encode("<s>hello", false), (std::vector<int64_t>{1, hello}));
  EXPECT_EQ(tok->decode({3 + 0xC3, hello}), "\xEF\xBF\xBD hello");
  EXPECT_EQ(tok->decode({1, hello}, false), "<s> hello");
  EXPECT_EQ(tok->decode({1, hello}, true), "hello");
}

TEST(HfTokenizer, MetaspacePreTokenizerSplitsAndPrependsOnce) {
  json j = llama2_style_json();
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "first"}, {"split", true}};
  j["decoder"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "first"}, {"split", true}};
  auto tok = from_json(j);
  const int64_t hello = tok->token_to_id("\xE2\x96\x81hello"), world = tok->token_to_id("\xE2\x96\x81world");
  EXPECT_EQ(tok->encode("hello world", false), (std::vector<int64_t>{hello, world}));
  // "first": after a special token the text gets no prepended ▁
  const auto ids = tok->encode("<s>hello", false);
  EXPECT_EQ(ids.front(), 1);
  EXPECT_NE(ids[1], hello);
  EXPECT_EQ(tok->decode(tok->encode("hello world", false)), "hello world");
}

TEST(HfTokenizer, NeoXStyleNormalizesAndMatchesNormalizedAddedTokens) {
  auto tok = from_json(lminf::testing::byte_level_tokenizer_json(lminf::testing::training_corpus(), 100, "neox"));
  // NFC: e + combining acute encodes like the precomposed é
  EXPECT_EQ(tok->encode("cafe\xCC\x81", false), tok->encode("caf\xC3\xA9", false));
  EXPECT_FALSE(tok->round_trips());
  const int64_t four = tok->token_to_id("    ");
  const auto ids = tok->encode("a    b", false);
  EXPECT_NE(std::find(ids.begin(), ids.end(), four), ids.end());
}

TEST(HfTokenizer, SplitBehaviours) {
  // Digits(individual) after a whitespace Split(Removed)
  json j = lminf::testing::byte_level_tokenizer_json("abc 123", 0, "gpt2");
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers", json::array({{{"type", "Split"}, {"pattern", {{"Regex", "\\s+"}}}, {"behavior", "Removed"}, {"invert", false}},
                                                       {{"type", "Digits"}, {"individual_digits", true}},
                                                       {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
  auto tok = from_json(j);
  EXPECT_EQ(tok->encode("ab  12", false).size(), 4u);  // a b 1 2 (the spaces are removed)
  EXPECT_EQ(tok->decode(tok->encode("ab  12", false)), "ab12");
}

// ---- errors -----------------------------------------------------------------------------------

TEST(TokenizerErrors, MalformedJsonNamesFileAndLine) {
  TempDir d;
  write_text(d / "tokenizer.json", "{\n  \"model\": {\n    \"type\": \"BPE\",\n    \"vocab\": {\"a\": 0,}\n  }\n}\n");
  const std::string e = error_of([&] { load_tokenizer(d.path()); });
  EXPECT_NE(e.find((d / "tokenizer.json").string() + ": not valid JSON"), std::string::npos) << e;
  EXPECT_NE(e.find("line 4"), std::string::npos) << e;
}

// Ids a tokenizer.json declares are bounded before the id -> token table is sized by them.
TEST(TokenizerErrors, HostileIdsNamedBeforeAllocation) {
  TempDir d;
  json j = lminf::testing::byte_level_tokenizer_json("ab", 1, "gpt2");
  j["model"]["vocab"][j["model"]["vocab"].begin().key()] = int64_t{1} << 31;
  write_text(d / "tokenizer.json", j.dump());
  std::string e = error_of([&] { load_tokenizer(d.path()); });
  EXPECT_NE(e.find((d / "tokenizer.json").string() + ": model.vocab[\""), std::string::npos) << e;
  EXPECT_NE(e.find("2147483648 is out of range (ids are 0.." + std::to_string(kMaxVocab - 1) + ")"), std::string::npos) << e;
  j = lminf::testing::byte_level_tokenizer_json("ab", 1, "gpt2");
  j["added_tokens"] = json::array({{{"id", "seven"}, {"content", "<s>"}}});
  write_text(d / "tokenizer.json", j.dump());
  e = error_of([&] { load_tokenizer(d.path()); });
  EXPECT_NE(e.find((d / "tokenizer.json").string() + ": added_tokens: \"id\" must be an integer"), std::string::npos) << e;
}

TEST(TokenizerErrors, UnsupportedPartsAreNamed) {
  json j = lminf::testing::byte_level_tokenizer_json("ab", 1, "gpt2");
  j["model"]["type"] = "WordPiece";
  EXPECT_NE(error_of([&] { from_json(j); }).find("model type \"WordPiece\" is not supported"), std::string::npos);
  j = lminf::testing::byte_level_tokenizer_json("ab", 1, "gpt2");
  j["normalizer"] = {{"type", "BertNormalizer"}};
  EXPECT_NE(error_of([&] { from_json(j); }).find("normalizer BertNormalizer is not supported"), std::string::npos);
  j = lminf::testing::byte_level_tokenizer_json("ab", 1, "gpt2");
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  EXPECT_NE(error_of([&] { from_json(j); }).find("regex \"(unclosed\" is not supported"), std::string::npos);
  TokenizerConfig c;
  c.bos_token = "<nope>";
  EXPECT_NE(error_of([&] { from_json(lminf::testing::byte_level_tokenizer_json("ab", 1, "gpt2"), c); }).find("bos_token \"<nope>\""),
            std::string::npos);
}

TEST(TokenizerErrors, MissingTokenizerNamesFolderAndFiles) {
  TempDir d;
  const std::string e = error_of([&] { load_tokenizer(d.path()); });
  EXPECT_NE(e.find(d.path().string()), std::string::npos) << e;
  EXPECT_NE(e.find("tokenizer.json"), std::string::npos) << e;
  EXPECT_NE(e.find("tokenizer.model"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { load_tokenizer(d / "absent"); }).find("does not exist"), std::string::npos);
}

TEST(TokenizerErrors, VocabularyLargerThanTheModelIsRefused) {
  TempDir d;
  write_text(d / "tokenizer.json", lminf::testing::byte_level_tokenizer_json("abc abd", 3, "gpt2").dump());
  auto tok = load_tokenizer(d.path());
  ModelConfig mc;
  mc.vocab_size = 1024;
  EXPECT_NO_THROW(check_tokenizer_fits(*tok, mc, "model.path"));  // padded model vocabularies are fine
  mc.vocab_size = 100;
  const std::string e = error_of([&] { check_tokenizer_fits(*tok, mc, "model.path"); });
  EXPECT_NE(e.find("has " + std::to_string(tok->vocab_size()) + " ids but the model"), std::string::npos) << e;
  EXPECT_NE(e.find("vocab_size 100"), std::string::npos) << e;
}

TEST(TokenizerErrors, InvalidUtf8InputNamesTheByte) {
  auto tok = from_json(lminf::testing::byte_level_tokenizer_json("ab", 1, "gpt2"));
  const std::string e = error_of([&] { tok->encode("ab\xC3(", false); });
  EXPECT_NE(e.find("invalid UTF-8 at byte 2"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { tok->decode({999999}); }).find("token id 999999 is not in the vocabulary"), std::string::npos);
}

TEST(TokenizerConfigFile, ReadsStringsAndAddedTokenObjects) {
  TempDir d;
  write_text(d / "tokenizer_config.json",
             R"({"bos_token": {"__type": "AddedToken", "content": "<s>"}, "eos_token": "</s>", "add_bos_token": true,
                 "add_eos_token": false, "unk_token": null})");
  const auto c = TokenizerConfig::from_dir(d.path());
  EXPECT_EQ(c.bos_token.value(), "<s>");
  EXPECT_EQ(c.eos_token.value(), "</s>");
  EXPECT_FALSE(c.unk_token.has_value());
  EXPECT_TRUE(c.add_bos_token.value());
  EXPECT_FALSE(c.add_eos_token.value());
  write_text(d / "tokenizer_config.json", "{\"add_bos_token\": yes}");
  EXPECT_NE(error_of([&] { TokenizerConfig::from_dir(d.path()); }).find("tokenizer_config.json: not valid JSON"),
            std::string::npos);
}

}  // namespace
}  // namespace lminf
