// Task ruler's prompts (experiments/tasks/ruler_prompt.h): every task's prompt is exactly
// length - tokens to generate tokens at tiny, awkward and longer lengths (the embedded model's
// SentencePiece and a tiny byte-level BPE tokenizer); too short a length is refused naming the key;
// needles sit at the unit boundary nearest their depth; keys, values and references have RULER's
// forms; the same seed gives the same prompt. Plus zeta, Zipf counts, UUIDs and RULER's scoring.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "experiments/tasks/prompt_pieces.h"
#include "experiments/tasks/ruler_prompt.h"
#include "experiments/tasks/ruler_score.h"
#include "experiments/tasks/sample_rng.h"
#include "framework/text/tokenizer.h"
#include "support/test_support.h"
#include "support/tokenizer_fixtures.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using lminf::testing::error_of;
using lminf::testing::source_dir;
using lminf::testing::TempDir;
using lminf::testing::write_text;

const char* kNoise = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";

// A word list, a text haystack and tiny SQuAD / HotpotQA files, written once.
class RulerPrompts : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    // 4913 made-up lowercase words of three syllables, and a few a word list drops
    const char* syllables[] = {"ba", "ko", "mi", "ru", "te", "lo", "na", "pe", "si", "du", "ga", "vo", "ze", "hu", "fa",
                               "ni", "jo"};
    std::string words;
    for (const char* a : syllables)
      for (const char* b : syllables)
        for (const char* c : syllables) words += std::string(a) + b + c + "\n";
    words += "Capital\nit's\nab\n";  // dropped: upper case, apostrophe, too short
    write_text(root() / "words", words);
    write_text(root() / "text.txt", lminf::testing::training_corpus());
    const char* stems[] = {"apple", "river", "stone", "cloud", "maple", "tiger", "lemon", "piano", "ocean", "forest",
                           "garden", "candle", "window", "bridge", "silver", "meadow", "rocket", "pencil", "valley",
                           "harbor"};
    const std::string filler = " The archive keeps a record of every visit. Each record names the day and the hour.";
    json squad = {{"data", json::array()}};
    for (int a = 0; a < 12; ++a) {
      json paragraphs = json::array();
      for (int p = 0; p < 4; ++p) {
        const std::string thing = stems[(a * 4 + p) % 20], keeper = stems[(a * 7 + p * 3 + 5) % 20];
        const std::string ctx = "Article " + std::to_string(a) + " paragraph " + std::to_string(p) +
                                " says the keeper of the " + thing + " is named " + keeper + "." + filler;
        paragraphs.push_back({{"context", ctx},
                              {"qas", {{{"question", "Who keeps the " + thing + " of article " + std::to_string(a) + "?"},
                                        {"answers", {{{"text", keeper}}}},
                                        {"is_impossible", false}},
                                       {{"question", "unanswerable?"}, {"answers", json::array()}, {"is_impossible", true}}}}});
      }
      squad["data"].push_back({{"title", "t"}, {"paragraphs", paragraphs}});
    }
    write_text(root() / "squad.json", squad.dump());
    json hotpot = json::array();
    for (int q = 0; q < 30; ++q) {
      json context = json::array();  // [[title, [sentences]]] (built explicitly: [string, x] would read as a key)
      const std::string n = std::to_string(q);
      context.push_back(json::array({"Title " + n + " " + stems[q % 20],
                                     json::array({"The ", stems[q % 20], " is in the ", stems[(q + 10) % 20], ".", filler})}));
      context.push_back(json::array({"Other " + n, json::array({"Nothing here.", filler})}));
      hotpot.push_back({{"question", "Where is the " + std::string(stems[q % 20]) + " " + n + "?"},
                        {"answer", stems[(q + 10) % 20]},
                        {"context", context}});
    }
    write_text(root() / "hotpot.json", hotpot.dump());
    res_ = new RulerResources();
    res_->words = read_word_list(root() / "words");
    res_->haystack_words = read_text_words(root() / "text.txt");
    res_->squad = std::make_shared<QaSet>(read_squad(root() / "squad.json"));
    res_->hotpotqa = std::make_shared<QaSet>(read_hotpotqa(root() / "hotpot.json"));
    fs::create_directories(root() / "bpe");
    write_text(root() / "bpe" / "tokenizer.json",
               lminf::testing::byte_level_tokenizer_json(lminf::testing::training_corpus(), 200, "gpt2").dump());
    write_text(root() / "bpe" / "tokenizer_config.json",
               R"({"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "add_bos_token": false})");
  }
  static void TearDownTestSuite() {
    delete res_;
    delete dir_;
  }
  static fs::path root() { return dir_->path(); }
  static RulerOptions small_options() {
    RulerOptions o;
    o.vt_example_length = 0;
    return o;
  }
  static TempDir* dir_;
  static RulerResources* res_;
};
TempDir* RulerPrompts::dir_ = nullptr;
RulerResources* RulerPrompts::res_ = nullptr;

// The longest haystack unit of a task, in tokens: needles are placed within half of it of their depth.
int64_t longest_unit(const RulerTaskDef& t, const PromptPieces& pieces, const RulerResources& res,
                     const RulerPrompt& p) {
  if (t.haystack == "noise") return static_cast<int64_t>(pieces.part(std::string(kNoise) + "\n", false).size());
  if (t.haystack == "text") {
    int64_t m = 0;
    for (const auto& w : res.haystack_words) m = std::max<int64_t>(m, static_cast<int64_t>(pieces.part(w, false).size()));
    return m;
  }
  int64_t m = 0;  // distractor needles: as long as the needles up to their keys and values
  for (int64_t n : p.needle_tokens) m = std::max(m, n);
  return 2 * m;
}

void expect_prompt(const Tokenizer& tok, const RulerOptions& o, const RulerResources& res, const RulerTaskDef& t,
                   const RulerPrompt& p, int64_t length, int64_t gen) {
  ASSERT_EQ(static_cast<int64_t>(p.ids.size()), length - gen);
  if (o.bos) EXPECT_EQ(p.ids[0], tok.bos_id());
  const PromptPieces pieces(tok);
  const int64_t F = p.haystack_tokens;
  EXPECT_GE(F, 0);
  const int64_t unit = longest_unit(t, pieces, res, p);
  int64_t before = 0;  // needle tokens before this needle
  for (size_t k = 0; k < p.needle_starts.size(); ++k) {
    // the needle's own tokens, after exactly needle_offsets[k] haystack tokens
    const auto ids = pieces.part(p.needles[k], false);
    ASSERT_EQ(std::vector<int64_t>(p.ids.begin() + p.needle_starts[k], p.ids.begin() + p.needle_starts[k] + p.needle_tokens[k]), ids);
    EXPECT_EQ(p.needle_starts[k], p.haystack_start + p.needle_offsets[k] + before);
    before += p.needle_tokens[k];
    // at the unit boundary nearest to depth * F: within half a unit (plus rounding)
    EXPECT_LE(std::abs(static_cast<double>(p.needle_offsets[k]) - p.needle_depths[k] * static_cast<double>(F)),
              0.5 * static_cast<double>(unit) + 1.0)
        << t.name << " needle " << k << " F " << F;
    if (k > 0) EXPECT_GE(p.needle_depths[k], p.needle_depths[k - 1]);
    const double grid = p.needle_depths[k] * static_cast<double>(o.depth_points - 1);
    EXPECT_NEAR(grid, std::round(grid), 1e-9) << "a point of the depth grid";
  }
  // the text reads as the template: the needles in order, RULER's answer prefix at the end
  const std::string text = tok.decode(p.ids, true);
  size_t at = 0;
  for (const auto& n : p.needles) {
    std::string body = n;
    while (!body.empty() && body.back() == '\n') body.pop_back();
    const size_t f = text.find(body, at);
    ASSERT_NE(f, std::string::npos) << t.name << ": " << body;
    at = f + body.size();
  }
  static const std::map<RulerKind, std::string> ends = {
      {RulerKind::kNiah, "mentioned in the provided text"}, {RulerKind::kVt, "they are:"},
      {RulerKind::kCwe, "appear most often in the list are:"}, {RulerKind::kFwe, "most frequently appeared words are:"},
      {RulerKind::kQa, "Answer:"}};
  std::string trimmed = text;
  while (!trimmed.empty() && trimmed.back() == ' ') trimmed.pop_back();
  const std::string& end = ends.at(t.kind);
  if (t.kind == RulerKind::kNiah) EXPECT_NE(trimmed.rfind(end), std::string::npos) << trimmed;
  else EXPECT_EQ(trimmed.substr(trimmed.size() - std::min(trimmed.size(), end.size())), end) << t.name;
  EXPECT_NE(text.find(p.query), std::string::npos) << t.name;
}

void check_every_task(const Tokenizer& tok, const RulerOptions& o, const RulerResources& res) {
  const RulerPromptBuilder b(tok, o, res);
  for (const auto& t : ruler_task_defs()) {
    for (int64_t gen : {t.tokens_to_generate, int64_t{5}}) {
      for (int64_t sample = 0; sample < 3; ++sample) {
        const uint64_t seed = ruler_sample_seed(7, t.name, 0, sample);
        const int64_t shortest = b.shortest_length(t, 4096, gen, sample, seed);
        for (int64_t length : {shortest, shortest + 1, shortest + 37, int64_t{1000}, int64_t{1537}}) {
          if (length < shortest) continue;
          SCOPED_TRACE(t.name + " length " + std::to_string(length) + " gen " + std::to_string(gen));
          const uint64_t s = ruler_sample_seed(7, t.name, length, sample);
          if (b.shortest_length(t, length, gen, sample, s) > length) continue;  // cwe / fwe depend on the length
          expect_prompt(tok, o, res, t, b.build(t, length, gen, sample, s), length, gen);
        }
        // one token short: refused, naming the key and the shortest length
        const uint64_t s = ruler_sample_seed(7, t.name, 600, sample);
        const int64_t need = b.shortest_length(t, 600, gen, sample, s);
        const std::string e = error_of([&] { b.build(t, need - 1, gen, sample, s); });
        EXPECT_NE(e.find("task.lengths = " + std::to_string(need - 1)), std::string::npos) << e;
        EXPECT_NE(e.find("use task.lengths >= " + std::to_string(need)), std::string::npos) << e;
      }
    }
  }
}

TEST_F(RulerPrompts, ExactLengthsEveryTaskEmbeddedTokenizer) {
  auto tok = load_tokenizer(source_dir() / "embedded" / "lminf-info-1m");
  check_every_task(*tok, small_options(), *res_);
  RulerOptions o = small_options();
  o.bos = false;
  o.depth_points = 7;
  check_every_task(*tok, o, *res_);
}

TEST_F(RulerPrompts, ExactLengthsEveryTaskByteLevelBpe) {
  auto tok = load_tokenizer(root() / "bpe");
  EXPECT_FALSE(PromptPieces(*tok).self_separate());
  check_every_task(*tok, small_options(), *res_);
}

TEST_F(RulerPrompts, VtExampleAndItsKey) {
  auto tok = load_tokenizer(source_dir() / "embedded" / "lminf-info-1m");
  RulerOptions o = small_options();
  o.vt_example_length = 300;
  o.vt_num_chains = 2;
  o.vt_num_hops = 3;
  const RulerPromptBuilder b(*tok, o, *res_);
  const RulerTaskDef& vt = ruler_task_def("vt");
  const RulerPrompt p = b.build(vt, 800, 30, 0, 11);
  expect_prompt(*tok, o, *res_, vt, p, 800, 30);
  ASSERT_EQ(p.needles.size(), 8u);  // 2 chains of 1 + 3 assignments
  ASSERT_EQ(p.references.size(), 4u);
  // the example comes first: a whole vt prompt of 300 tokens and its answer
  const std::string text = tok->decode(p.ids, true);
  EXPECT_LT(text.find("they are:"), text.find(p.needles[0].substr(0, 9)));
  // chain 0 reads VAR r0 = query, VAR r1 = VAR r0, ... in prompt order
  size_t at = text.find("VAR " + p.references[0] + " = " + p.query);
  ASSERT_NE(at, std::string::npos) << text;
  for (size_t j = 1; j < p.references.size(); ++j) {
    const size_t f = text.find("VAR " + p.references[j] + " = VAR " + p.references[j - 1], at);
    ASSERT_NE(f, std::string::npos) << j;
    at = f;
  }
  o.vt_example_length = 20;
  const std::string e = error_of([&] { RulerPromptBuilder(*tok, o, *res_).build(vt, 800, 30, 0, 11); });
  EXPECT_NE(e.find("task.vt_example_length = 20"), std::string::npos) << e;
}

TEST_F(RulerPrompts, ValuesHaveRulersForms) {
  auto tok = load_tokenizer(source_dir() / "embedded" / "lminf-info-1m");
  const RulerPromptBuilder b(*tok, small_options(), *res_);
  const std::regex number("[1-9][0-9]{6}"), uuid("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  const std::set<std::string> words(res_->words.begin(), res_->words.end());
  auto is_word_key = [&](const std::string& k) {
    const size_t d = k.find('-');
    return d != std::string::npos && words.count(k.substr(0, d)) && words.count(k.substr(d + 1));
  };
  for (int64_t i = 0; i < 5; ++i) {
    auto build = [&](const char* name) { return b.build(ruler_task_def(name), 900, 40, i, ruler_sample_seed(3, name, 900, i)); };
    const RulerPrompt s1 = build("niah_single_1"), s3 = build("niah_single_3"), k3 = build("niah_multikey_3"),
                      mv = build("niah_multivalue"), mq = build("niah_multiquery"), mk = build("niah_multikey_1");
    ASSERT_EQ(s1.references.size(), 1u);
    EXPECT_TRUE(std::regex_match(s1.references[0], number)) << s1.references[0];
    EXPECT_TRUE(is_word_key(s1.query)) << s1.query;
    EXPECT_TRUE(std::regex_match(s3.references[0], uuid)) << s3.references[0];
    EXPECT_TRUE(std::regex_match(k3.query, uuid)) << k3.query;
    EXPECT_TRUE(std::regex_match(k3.references[0], uuid));
    EXPECT_EQ(mv.references.size(), 4u);
    EXPECT_EQ(mv.needles.size(), 4u);
    EXPECT_EQ(mq.references.size(), 4u);
    EXPECT_EQ(std::count(mq.query.begin(), mq.query.end(), ','), 3) << mq.query;  // "a, b, c, and d"
    EXPECT_EQ(mk.needles.size(), 4u);
    EXPECT_EQ(mk.references.size(), 1u);
    // the needle of the query holds its value
    for (const auto* p : {&s1, &s3, &k3, &mk}) {
      bool found = false;
      for (const auto& n : p->needles) found = found || n.find(p->query + " is: " + p->references[0] + ".") != std::string::npos;
      EXPECT_TRUE(found) << p->query;
    }
    // singular wording for one value asked for, plural otherwise (RULER's template rewrite)
    const std::string t1 = tok->decode(s1.ids, true), tq = tok->decode(mq.ids, true);
    EXPECT_NE(t1.find("A special magic number is hidden"), std::string::npos) << t1.substr(0, 120);
    EXPECT_NE(tq.find("Some special magic numbers are hidden"), std::string::npos);
    const RulerPrompt vt = build("vt");
    EXPECT_TRUE(std::regex_match(vt.query, std::regex("[1-9][0-9]{4}")));
    for (const auto& r : vt.references) EXPECT_TRUE(std::regex_match(r, std::regex("[A-Z]{5}"))) << r;
  }
}

// Counts of each word in the context of a cwe / fwe prompt.
std::map<std::string, int64_t> context_counts(const std::string& text, const std::string& from, const std::string& to) {
  const size_t a = text.rfind(from), b = text.rfind(to);
  std::istringstream in(text.substr(a + from.size(), b - a - from.size()));
  std::map<std::string, int64_t> c;
  for (std::string w; in >> w;) ++c[w];
  return c;
}

TEST_F(RulerPrompts, CommonAndFrequentWordsAreTheAnswers) {
  auto tok = load_tokenizer(source_dir() / "embedded" / "lminf-info-1m");
  RulerOptions o = small_options();
  o.cwe_num_cw = 3;
  const RulerPromptBuilder b(*tok, o, *res_);
  for (int64_t length : {1500, 3000}) {
    const RulerPrompt c = b.build(ruler_task_def("cwe"), length, 20, 0, 5);
    ASSERT_EQ(c.references.size(), 3u);
    const auto counts = context_counts(tok->decode(c.ids, true), "most often.\n", "\nQuestion:");
    int64_t rare_max = 0, common_min = 1 << 30;
    for (const auto& [w, n] : counts) {
      if (!std::isalpha(static_cast<unsigned char>(w[0]))) continue;  // the item numbers
      const bool common = std::find(c.references.begin(), c.references.end(), w) != c.references.end();
      (common ? common_min : rare_max) = common ? std::min(common_min, n) : std::max(rare_max, n);
    }
    EXPECT_GT(common_min, rare_max + 2) << "the common words stand out (6 vs 1 below 4096 tokens, a cut item aside)";
    const RulerPrompt f = b.build(ruler_task_def("fwe"), length, 20, 0, 5);
    ASSERT_EQ(f.references.size(), 3u);
    const auto fc = context_counts(tok->decode(f.ids, true), "coded words.", "\nQuestion:");
    std::vector<std::pair<int64_t, std::string>> ranked;
    for (const auto& [w, n] : fc) ranked.push_back({-n, w});
    std::sort(ranked.begin(), ranked.end());
    ASSERT_GE(ranked.size(), 4u);
    EXPECT_EQ(ranked[0].second, "...");  // rank 1 is RULER's noise word
    std::set<std::string> top(f.references.begin(), f.references.end());
    for (int k = 1; k <= 3; ++k) EXPECT_TRUE(top.count(ranked[static_cast<size_t>(k)].second)) << ranked[static_cast<size_t>(k)].second;
  }
}

TEST_F(RulerPrompts, QaHoldsTheGoldDocumentsAndTheQuestion) {
  auto tok = load_tokenizer(source_dir() / "embedded" / "lminf-info-1m");
  const RulerPromptBuilder b(*tok, small_options(), *res_);
  for (int64_t i = 0; i < 9; ++i) {
    const RulerPrompt p = b.build(ruler_task_def("qa_1"), 400, 32, i, 99 + static_cast<uint64_t>(i));
    const QaItem& q = res_->squad->items[static_cast<size_t>(i)];
    EXPECT_EQ(p.query, q.question);
    EXPECT_EQ(p.references, q.answers);
    EXPECT_NE(tok->decode(p.ids, true).find(res_->squad->docs[static_cast<size_t>(q.gold[0])]), std::string::npos);
  }
  EXPECT_EQ(res_->squad->items.size(), 48u) << "impossible questions dropped";
  const RulerPrompt h = b.build(ruler_task_def("qa_2"), 300, 32, 1, 4);
  EXPECT_EQ(h.references, std::vector<std::string>{res_->hotpotqa->items[1].answers});
  EXPECT_NE(tok->decode(h.ids, true).find("Title 1 river"), std::string::npos);
}

TEST_F(RulerPrompts, SameSeedSamePrompt) {
  auto tok = load_tokenizer(source_dir() / "embedded" / "lminf-info-1m");
  const RulerPromptBuilder b(*tok, small_options(), *res_), c(*tok, small_options(), *res_);
  for (const auto& t : ruler_task_defs()) {
    const auto x = b.build(t, 1200, 10, 1, 42), y = c.build(t, 1200, 10, 1, 42), z = b.build(t, 1200, 10, 1, 43);
    EXPECT_EQ(x.ids, y.ids) << t.name;
    EXPECT_EQ(x.references, y.references) << t.name;
    if (t.kind != RulerKind::kQa) EXPECT_NE(x.ids, z.ids) << t.name;
  }
  EXPECT_EQ(ruler_sample_seed(1, "vt", 100, 2), ruler_sample_seed(1, "vt", 100, 2));
  std::set<uint64_t> seeds;
  for (const char* t : {"vt", "cwe"})
    for (int64_t L : {100, 200})
      for (int64_t s : {0, 1}) seeds.insert(ruler_sample_seed(1, t, L, s));
  EXPECT_EQ(seeds.size(), 8u);
}

TEST(RulerNumbers, ZetaZipfUuid) {
  const double pi = std::acos(-1.0);
  // Euler-Maclaurin to B_10 at N = 20: error far below 1e-13 for s >= 1.5
  EXPECT_NEAR(riemann_zeta(2.0), pi * pi / 6, 1e-13);
  EXPECT_NEAR(riemann_zeta(4.0), std::pow(pi, 4) / 90, 1e-13);
  EXPECT_NEAR(riemann_zeta(3.0), 1.2020569031595942, 1e-13);
  // against a float64 direct sum with its integral tail, for awkward exponents
  for (double s : {1.5, 2.37, 3.9}) {
    double direct = 0;
    const int64_t n = 2000000;
    for (int64_t k = n; k >= 1; --k) direct += std::pow(static_cast<double>(k), -s);
    direct += std::pow(static_cast<double>(n) + 0.5, 1 - s) / (s - 1);  // midpoint tail, error O(n^{-s-1})
    EXPECT_NEAR(riemann_zeta(s), direct, 1e-9) << s;
  }
  const auto c = zipf_counts(1000, 5, 2.0);
  ASSERT_EQ(c.size(), 5u);
  for (int64_t k = 1; k <= 5; ++k)
    EXPECT_EQ(c[static_cast<size_t>(k - 1)], static_cast<int64_t>(1000.0 / static_cast<double>(k * k) / (pi * pi / 6)));
  EXPECT_EQ(uuid4_text(0, 0), "00000000-0000-4000-8000-000000000000");
  EXPECT_EQ(uuid4_text(~0ULL, ~0ULL), "ffffffff-ffff-4fff-bfff-ffffffffffff");
  SampleRng r(5);
  std::vector<int64_t> d = r.distinct(10, 10);
  std::sort(d.begin(), d.end());
  for (int64_t i = 0; i < 10; ++i) EXPECT_EQ(d[static_cast<size_t>(i)], i);
}

TEST(RulerScore, RulersMetricsOnHandMadePredictions) {
  EXPECT_EQ(ruler_postprocess("  \t 1234567\x01more\x1f  \n"), "1234567\nmore");
  EXPECT_EQ(ruler_postprocess("\x02\x03"), "");
  EXPECT_EQ(ruler_postprocess("a\x7f b"), "a\x7f b");  // DEL is not in RULER's [\x00-\x1f]
  EXPECT_DOUBLE_EQ(string_match_all("The numbers are 123 and 456.", {"123", "456"}), 1.0);
  EXPECT_DOUBLE_EQ(string_match_all("only 123", {"123", "456", "789"}), 1.0 / 3);
  EXPECT_DOUBLE_EQ(string_match_all("APPLE pie", {"apple", "Pie", "cake", "x"}), 0.5);  // case-insensitive
  EXPECT_DOUBLE_EQ(string_match_all("", {"a"}), 0.0);
  EXPECT_DOUBLE_EQ(string_match_all("12345", {"234"}), 1.0);  // a substring, as RULER's `in`
  EXPECT_DOUBLE_EQ(string_match_part("Paris, France", {"paris", "Lyon"}), 1.0);
  EXPECT_DOUBLE_EQ(string_match_part("Lille", {"paris", "Lyon"}), 0.0);
  // the table: 100 x the mean per cell, the average over tasks per length, the effective length
  json records = json::array();
  auto add = [&](const char* t, int64_t L, double s) { records.push_back({{"task", t}, {"length", L}, {"score", s}}); };
  add("a", 100, 1.0), add("a", 100, 0.5), add("b", 100, 1.0), add("a", 200, 0.9), add("b", 200, 0.8);
  add("a", 400, 1.0), add("b", 400, 1.0);
  const json s = summarize_ruler(records, {"a", "b"}, {100, 200, 400}, 85.6);
  ASSERT_EQ(s["scores"].size(), 6u);
  EXPECT_EQ(s["scores"][0], json({{"task", "a"}, {"length", 100}, {"score", 75.0}, {"num_samples", 2}}));
  EXPECT_DOUBLE_EQ(s["averages"][0]["average"].get<double>(), 87.5);
  EXPECT_DOUBLE_EQ(s["averages"][1]["average"].get<double>(), 85.0);
  EXPECT_EQ(s["effective_length"]["effective_length"], 100) << "400 passes again, but 200 broke the run";
  EXPECT_DOUBLE_EQ(s["effective_length"]["threshold"].get<double>(), 85.6);
  EXPECT_EQ(ruler_effective_length(json::array({{{"length", 9}, {"average", 50.0}}}), 85.6), 0);
  EXPECT_EQ(ruler_effective_length(json::array({{{"length", 9}, {"average", 90.0}}, {{"length", 3}, {"average", 99.0}}}), 85.6), 9);
  EXPECT_EQ(ruler_effective_length(json::array({{{"length", 9}, {"average", 85.6}}}), 85.6), 9) << ">= threshold";
}

}  // namespace
}  // namespace lminf
