// Task passkey: prompts of exact token length with the needle at an exact depth (the embedded model's
// SentencePiece tokenizer, a tiny SentencePiece and a tiny byte-level BPE tokenizer), keys and depths
// from the seed, first-integer scoring, the data-parallel split and merge, and the task end to end
// (tiny random checkpoint in process; the embedded model through the binary) with results.json
// recomputed by hand from samples.jsonl.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "analysis/report/gnuplot.h"
#include "experiments/tasks/passkey_prompt.h"
#include "experiments/tasks/passkey_task.h"
#include "experiments/run/run_experiment.h"
#include "framework/text/tokenizer.h"
#include "models/random_checkpoint.h"
#include "parallel/communicator.h"
#include "support/test_support.h"
#include "support/tokenizer_fixtures.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using lminf::testing::error_of;
using lminf::testing::read_text;
using lminf::testing::run_command;
using lminf::testing::source_dir;
using lminf::testing::TempDir;
using lminf::testing::write_text;

fs::path embedded_model() { return source_dir() / "embedded" / "lminf-info-1m"; }

// The template's words plus the fixtures' corpus, so the tiny tokenizers learn real pieces.
std::string passkey_corpus() {
  const PasskeyTemplate t = default_passkey_template();
  std::string s = lminf::testing::training_corpus();
  for (int i = 0; i < 30; ++i)
    s += t.task_line + " " + t.filler + " " + passkey_needle_text(t.needle, 1000 + 37 * i) + " " + t.question + " " +
         std::to_string(4000 + 91 * i) + "\n";
  return s;
}

// Tokenizer folders shared by the tests of this file: a tiny SentencePiece (BPE, byte fallback) and
// a tiny byte-level BPE tokenizer.json with <|endoftext|> as BOS and EOS.
class Tokenizers : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    lminf::testing::train_tiny_sentencepiece(dir_->path() / "spm", passkey_corpus(), 500);
    fs::create_directories(dir_->path() / "bpe");
    write_text(dir_->path() / "bpe" / "tokenizer.json",
               lminf::testing::byte_level_tokenizer_json(passkey_corpus(), 200, "gpt2").dump());
    write_text(dir_->path() / "bpe" / "tokenizer_config.json",
               R"({"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "add_bos_token": false})");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path dir() { return dir_->path(); }
  static TempDir* dir_;
};
TempDir* Tokenizers::dir_ = nullptr;

// The layout of one prompt, checked piece by piece against the builder's own parts.
void expect_layout(const Tokenizer& tok, const PasskeyPromptBuilder& b, const PasskeyPrompt& p, int64_t length,
                   double depth, int64_t key, bool bos) {
  const PasskeyTemplate t = default_passkey_template();
  ASSERT_EQ(static_cast<int64_t>(p.ids.size()), length);
  const auto task = b.part(t.task_line, true), needle = b.part(passkey_needle_text(t.needle, key), false),
             question = b.part(t.question, false), filler = b.part(t.filler, false);
  const int64_t fixed = (bos ? 1 : 0) + static_cast<int64_t>(task.size() + needle.size() + question.size());
  EXPECT_EQ(b.fixed_tokens(key), fixed);
  const int64_t F = length - fixed;
  EXPECT_EQ(p.haystack_tokens, F);
  EXPECT_EQ(p.haystack_start, (bos ? 1 : 0) + static_cast<int64_t>(task.size()));
  // the needle starts exactly round(depth * F) filler tokens into the haystack
  EXPECT_EQ(p.needle_start - p.haystack_start, std::llround(depth * static_cast<double>(F))) << "depth " << depth;
  EXPECT_NEAR(p.depth, depth, F > 0 ? 0.5 / static_cast<double>(F) + 1e-12 : 1.0);
  EXPECT_EQ(p.needle_tokens, static_cast<int64_t>(needle.size()));
  if (bos) EXPECT_EQ(p.ids[0], tok.bos_id());
  auto slice = [&](int64_t from, size_t n) {
    return std::vector<int64_t>(p.ids.begin() + from, p.ids.begin() + from + static_cast<int64_t>(n));
  };
  EXPECT_EQ(slice(bos ? 1 : 0, task.size()), task);
  EXPECT_EQ(slice(p.needle_start, needle.size()), needle);
  EXPECT_EQ(slice(length - static_cast<int64_t>(question.size()), question.size()), question);
  // filler before the needle and after it: the filler sentence's tokens from a sentence start, cut
  for (int64_t i = p.haystack_start; i < p.needle_start; ++i)
    ASSERT_EQ(p.ids[static_cast<size_t>(i)], filler[static_cast<size_t>(i - p.haystack_start) % filler.size()]);
  const int64_t after = p.needle_start + p.needle_tokens, end = length - static_cast<int64_t>(question.size());
  for (int64_t i = after; i < end; ++i)
    ASSERT_EQ(p.ids[static_cast<size_t>(i)], filler[static_cast<size_t>(i - after) % filler.size()]);
  EXPECT_EQ(p.needle_distance(), length - after);
  // the text reads as the template: the needle and the question are there, in order
  const std::string text = tok.decode(p.ids, true);
  const size_t at_needle = text.find(passkey_needle_text(t.needle, key));
  ASSERT_NE(at_needle, std::string::npos) << text;
  EXPECT_NE(text.find(t.question, at_needle), std::string::npos) << text;
}

void check_builder(const Tokenizer& tok, bool bos) {
  const PasskeyPromptBuilder b(tok, default_passkey_template(), bos);
  const int64_t shortest = b.fixed_tokens(9999999);
  for (int64_t length : {shortest, shortest + 1, shortest + 37, int64_t{257}, int64_t{1024}}) {
    if (length < shortest) continue;
    for (double depth : {0.0, 0.1, 0.25, 0.5, 0.77, 0.999, 1.0}) {
      for (int64_t key : {int64_t{7}, int64_t{31337}, int64_t{9999999}}) {
        if (length < b.fixed_tokens(key)) continue;
        SCOPED_TRACE("length " + std::to_string(length) + " depth " + std::to_string(depth) + " key " + std::to_string(key));
        expect_layout(tok, b, b.build(length, depth, key), length, depth, key, bos);
      }
    }
  }
  EXPECT_NE(error_of([&] { b.build(b.fixed_tokens(12345) - 1, 0.5, 12345); }).find("use task.lengths >= "),
            std::string::npos);
  EXPECT_NE(error_of([&] { b.build(1024, 1.5, 12345); }).find("outside [0, 1]"), std::string::npos);
}

TEST(PasskeyPrompt, ExactLengthAndDepthEmbeddedTokenizer) {
  auto tok = load_tokenizer(embedded_model());
  check_builder(*tok, true);
  check_builder(*tok, false);
  EXPECT_TRUE(PasskeyPromptBuilder(*tok, default_passkey_template(), true).pieces_self_separate());
}

TEST_F(Tokenizers, ExactLengthAndDepthTinySentencePiece) {
  auto tok = load_tokenizer(dir() / "spm");
  check_builder(*tok, true);
}

TEST_F(Tokenizers, ExactLengthAndDepthTinyByteLevelBpe) {
  auto tok = load_tokenizer(dir() / "bpe");
  const PasskeyPromptBuilder b(*tok, default_passkey_template(), true);
  EXPECT_FALSE(b.pieces_self_separate());  // parts after the first are encoded with a leading space
  check_builder(*tok, true);
}

TEST(PasskeyPrompt, TemplateChecks) {
  auto tok = load_tokenizer(embedded_model());
  PasskeyTemplate t = default_passkey_template();
  t.needle = "no slot";
  EXPECT_NE(error_of([&] { PasskeyPromptBuilder(*tok, t, true); }).find("{key}"), std::string::npos);
  EXPECT_EQ(passkey_needle_text("a {key} b {key}", 42), "a 42 b 42");
  EXPECT_EQ(passkey_needle_text(default_passkey_template().needle, 123),
            "The pass key is 123. Remember it. 123 is the pass key.");
}

TEST(PasskeyScore, FirstIntegerEdgeCases) {
  EXPECT_EQ(passkey_answer(""), std::nullopt);
  EXPECT_EQ(passkey_answer("no digits here."), std::nullopt);
  EXPECT_EQ(passkey_answer("\xEF\xBC\x91\xEF\xBC\x92"), std::nullopt);  // full-width digits are not ASCII digits
  EXPECT_EQ(passkey_answer("12345"), "12345");
  EXPECT_EQ(passkey_answer(" 68351. Remember it."), "68351");
  EXPECT_EQ(passkey_answer("key is 0042 and 7"), "42");
  EXPECT_EQ(passkey_answer("0000"), "0");
  EXPECT_EQ(passkey_answer("-17"), "17");
  EXPECT_EQ(passkey_answer("3.14"), "3");
  EXPECT_EQ(passkey_answer("12,345"), "12");
  EXPECT_EQ(passkey_answer("x9"), "9");
  EXPECT_TRUE(passkey_correct(" 123", 123));
  EXPECT_TRUE(passkey_correct("0123 is it", 123));
  EXPECT_TRUE(passkey_correct("123456789012345678901234567890", 0) == false);  // no overflow
  EXPECT_FALSE(passkey_correct("1234", 123));
  EXPECT_FALSE(passkey_correct("12 3", 123));
  EXPECT_FALSE(passkey_correct("", 1));
  EXPECT_FALSE(passkey_correct("the key", 1));
  EXPECT_TRUE(passkey_correct("0", 0));
}

PasskeySpec small_spec() {
  PasskeySpec s;
  s.lengths = {100, 200, 300};
  s.depths = {0.0, 0.5, 1.0};
  s.samples = 4;
  return s;
}

TEST(PasskeyPlan, KeysAndDepthsFromTheSeed) {
  PasskeySpec s = small_spec();
  const auto a = plan_passkey_samples(s, 3), b = plan_passkey_samples(s, 3), c = plan_passkey_samples(s, 4);
  ASSERT_EQ(a.size(), 3u * 3u * 4u);
  std::set<int64_t> keys;
  int64_t differ = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].key, b[i].key);
    EXPECT_EQ(a[i].length, s.lengths[i / 12]);
    EXPECT_EQ(a[i].depth, s.depths[(i / 4) % 3]);
    EXPECT_GE(a[i].key, s.key_min);
    EXPECT_LE(a[i].key, s.key_max);
    keys.insert(a[i].key);
    differ += a[i].key != c[i].key;
  }
  EXPECT_GE(keys.size(), a.size() - 1);  // 36 draws from 1e7 keys
  EXPECT_GE(differ, static_cast<int64_t>(a.size()) - 1);
  // another length list leaves the cells of the remaining lengths unchanged
  PasskeySpec t = s;
  t.lengths = {300, 50};
  const auto d = plan_passkey_samples(t, 3);
  for (size_t i = 0; i < 12; ++i) {
    EXPECT_EQ(d[i].key, a[24 + i].key);
    EXPECT_EQ(d[i].depth, a[24 + i].depth);
  }
  // a narrow key range: every key inside it, both ends reached
  t.key_min = 5;
  t.key_max = 6;
  t.samples = 40;
  std::set<int64_t> narrow;
  for (const auto& x : plan_passkey_samples(t, 0)) narrow.insert(x.key);
  EXPECT_EQ(narrow, (std::set<int64_t>{5, 6}));
}

TEST(PasskeyPlan, RandomDepthsAndBins) {
  PasskeySpec s = small_spec();
  s.depths.clear();
  s.samples = 200;
  s.depth_bins = 4;
  const auto a = plan_passkey_samples(s, 1);
  ASSERT_EQ(a.size(), 600u);
  std::vector<int64_t> per_bin(4, 0);
  for (const auto& x : a) {
    EXPECT_EQ(x.depth_index, -1);
    EXPECT_GE(x.depth, 0.0);
    EXPECT_LT(x.depth, 1.0);
    const int64_t bin = passkey_depth_cell(s, x);
    EXPECT_EQ(bin, static_cast<int64_t>(x.depth * 4));
    ++per_bin[static_cast<size_t>(bin)];
  }
  for (int64_t n : per_bin) EXPECT_GT(n, 100);  // ~150 each
  EXPECT_EQ(passkey_depth_axis(s), (std::vector<double>{0.125, 0.375, 0.625, 0.875}));
  PasskeySample one;
  one.depth = 1.0;
  EXPECT_EQ(passkey_depth_cell(s, one), 3);
}

TEST(PasskeyPlan, SummaryOfRandomDepthsCountsEachSampleInItsBin) {
  PasskeySpec s = small_spec();
  s.depths.clear();
  s.samples = 50;
  s.depth_bins = 3;
  std::vector<PasskeyOutcome> outcomes;
  std::map<std::pair<int64_t, int64_t>, std::pair<int64_t, int64_t>> cells;  // (length, bin) -> (n, correct)
  for (const auto& x : plan_passkey_samples(s, 9)) {
    outcomes.push_back({x, x.key % 3 == 0});
    auto& c = cells[{x.length, static_cast<int64_t>(x.depth * 3)}];
    c.first += 1;
    c.second += x.key % 3 == 0;
  }
  const json r = summarize_passkey(s, outcomes);
  EXPECT_EQ(r["samples"], 150);
  ASSERT_EQ(r["by_depth"].size(), 3u);
  EXPECT_DOUBLE_EQ(r["by_depth"][1]["depth_lo"].get<double>(), 1.0 / 3);
  EXPECT_DOUBLE_EQ(r["by_depth"][1]["depth_hi"].get<double>(), 2.0 / 3);
  ASSERT_EQ(r["cells"].size(), 9u);
  for (size_t k = 0; k < 9; ++k) {
    const auto& e = r["cells"][k];
    const auto& want = cells[{s.lengths[k % 3], static_cast<int64_t>(k / 3)}];
    EXPECT_EQ(e["length"].get<int64_t>(), s.lengths[k % 3]);
    EXPECT_DOUBLE_EQ(e["depth"].get<double>(), (static_cast<double>(k / 3) + 0.5) / 3);
    EXPECT_EQ(e["samples"].get<int64_t>(), want.first);
    EXPECT_EQ(e["correct"].get<int64_t>(), want.second);
  }
}

TEST(PasskeyParallel, SplitAndMergeCoverEverySampleOnce) {
  for (int64_t total : {1, 2, 7, 10, 13}) {
    for (int64_t n : {1, 2, 3, 5}) {
      std::vector<int64_t> owner(static_cast<size_t>(total), -1);
      std::vector<at::Tensor> parts;
      for (int64_t r = 0; r < n; ++r) {
        std::vector<std::vector<int64_t>> mine;
        for (int64_t i : passkey_share(total, n, r)) {
          ASSERT_EQ(owner[static_cast<size_t>(i)], -1) << "sample " << i << " taken twice";
          owner[static_cast<size_t>(i)] = r;
          mine.push_back(std::vector<int64_t>(static_cast<size_t>(i % 4), 100 + i));  // i % 4 tokens, some empty
        }
        parts.push_back(pack_generated(mine, total, n, 3 + 1));
      }
      const auto all = unpack_generated(at::cat(parts, 0), total, n);
      ASSERT_EQ(static_cast<int64_t>(all.size()), total);
      for (int64_t i = 0; i < total; ++i) {
        EXPECT_NE(owner[static_cast<size_t>(i)], -1);
        EXPECT_EQ(all[static_cast<size_t>(i)], std::vector<int64_t>(static_cast<size_t>(i % 4), 100 + i));
      }
    }
  }
}

// results.json against a recomputation from samples.jsonl: overall, by length, by depth, by cell.
void expect_results_match_samples(const fs::path& out, const PasskeySpec& spec) {
  const json r = json::parse(read_text(out / "results.json"));
  std::istringstream in(read_text(out / "samples.jsonl"));
  std::string line;
  std::map<int64_t, std::pair<int64_t, int64_t>> by_length;
  std::map<double, std::pair<int64_t, int64_t>> by_depth;
  std::map<std::pair<int64_t, double>, std::pair<int64_t, int64_t>> cells;
  int64_t n = 0, c = 0;
  while (std::getline(in, line)) {
    const json s = json::parse(line);
    EXPECT_EQ(s["index"].get<int64_t>(), n);
    const bool ok = s["correct"].get<bool>();
    // the line's own verdict is the first integer of its text against its key
    EXPECT_EQ(ok, passkey_correct(s["generated"].get<std::string>(), s["key"].get<int64_t>()));
    EXPECT_LE(s["generated_ids"].size(), static_cast<size_t>(spec.max_new_tokens));
    const int64_t L = s["length"].get<int64_t>();
    const double d = s["depth_cell"].get<double>();
    for (auto* t : {&by_length[L], &by_depth[d], &cells[{L, d}]}) {
      t->first += 1;
      t->second += ok;
    }
    ++n;
    c += ok;
  }
  EXPECT_EQ(r["samples"].get<int64_t>(), n);
  EXPECT_EQ(r["correct"].get<int64_t>(), c);
  EXPECT_DOUBLE_EQ(r["accuracy"].get<double>(), static_cast<double>(c) / static_cast<double>(n));
  ASSERT_EQ(r["by_length"].size(), spec.lengths.size());
  for (const auto& e : r["by_length"]) {
    const auto& t = by_length.at(e["length"].get<int64_t>());
    EXPECT_EQ(e["samples"].get<int64_t>(), t.first);
    EXPECT_EQ(e["correct"].get<int64_t>(), t.second);
  }
  for (const auto& e : r["by_depth"]) {
    const auto it = by_depth.find(e["depth"].get<double>());
    EXPECT_EQ(e["samples"].get<int64_t>(), it == by_depth.end() ? 0 : it->second.first);
    EXPECT_EQ(e["correct"].get<int64_t>(), it == by_depth.end() ? 0 : it->second.second);
  }
  int64_t cell_total = 0;
  for (const auto& e : r["cells"]) {
    const auto it = cells.find({e["length"].get<int64_t>(), e["depth"].get<double>()});
    const int64_t sn = it == cells.end() ? 0 : it->second.first, sc = it == cells.end() ? 0 : it->second.second;
    EXPECT_EQ(e["samples"].get<int64_t>(), sn);
    EXPECT_EQ(e["correct"].get<int64_t>(), sc);
    if (sn > 0) EXPECT_DOUBLE_EQ(e["accuracy"].get<double>(), static_cast<double>(sc) / static_cast<double>(sn));
    else EXPECT_TRUE(e["accuracy"].is_null());
    cell_total += sn;
  }
  EXPECT_EQ(cell_total, n);
}

TEST_F(Tokenizers, TaskOnTinyRandomCheckpoint) {
  TempDir d;
  const fs::path model = d / "model";
  lminf::testing::train_tiny_sentencepiece(model, passkey_corpus(), 500);
  ModelConfig c = llama_preset("tiny");
  c.vocab_size = 512;
  write_random_llama(model, c, 11);
  write_text(d / "p.yaml", "name: pk\nseed: 5\nmodel: {path: " + model.string() + "}\n"
                           "attention: {variant: lambda, local_branch: 32, global_branch: 4}\n"
                           "task: {type: passkey, lengths: [240, 320], depths: [0, 0.5, 1], samples: 2, max_new_tokens: 5}\n"
                           "output: {dir: " + (d / "out").string() + "}\n");
  LocalCommunicator world;
  auto exp = load_experiment((d / "p.yaml").string(), {}, 1);
  run_experiment(exp, world);
  PasskeySpec spec;
  spec.lengths = {240, 320};
  spec.depths = {0, 0.5, 1};
  spec.max_new_tokens = 5;
  expect_results_match_samples(d / "out", spec);
  const json r = json::parse(read_text(d / "out" / "results.json"));
  EXPECT_EQ(r["samples"], 12);
  EXPECT_EQ(r["cells"].size(), 6u);
  EXPECT_EQ(r["provenance"]["variant"], "lambda");
  // the needle of every sample sits where the builder puts it for that sample's length and depth
  auto tok = load_tokenizer(model);
  const PasskeyPromptBuilder b(*tok, default_passkey_template(), true);
  std::istringstream in(read_text(d / "out" / "samples.jsonl"));
  std::string line;
  while (std::getline(in, line)) {
    const json s = json::parse(line);
    const auto p = b.build(s["length"].get<int64_t>(), s["depth"].get<double>(), s["key"].get<int64_t>());
    EXPECT_EQ(s["needle_start"].get<int64_t>(), p.needle_start);
    EXPECT_EQ(s["needle_distance"].get<int64_t>(), p.needle_distance());
  }
  // config.yaml has no data section (the task reads none)
  EXPECT_EQ(read_text(d / "out" / "config.yaml").find("\ndata:"), std::string::npos);
}

TEST_F(Tokenizers, ConfigProblemsBeforeWeights) {
  TempDir d;
  const fs::path model = d / "model";
  lminf::testing::train_tiny_sentencepiece(model, passkey_corpus(), 500);
  ModelConfig c = llama_preset("tiny");
  c.vocab_size = 512;
  write_random_llama(model, c, 11);
  auto err = [&](const std::string& task, const std::string& extra) {
    write_text(d / "p.yaml", "name: pk\nmodel: {path: " + model.string() + "}\ntask: " + task + "\n" + extra +
                                 "output: {dir: " + (d / "out").string() + "}\n");
    return error_of([&] { load_experiment((d / "p.yaml").string(), {}, 1); });
  };
  EXPECT_NE(err("{type: passkey, lengths: [10]}", "").find("use lengths >= "), std::string::npos);
  EXPECT_NE(err("{type: passkey, lengths: [300]}", "data: {path: x.ids}\n").find("reads no data"), std::string::npos);
  EXPECT_NE(err("{type: passkey, lengths: [300], key_min: 9, key_max: 3}", "").find("task.key_min"), std::string::npos);
  EXPECT_NE(err("{type: passkey, lengths: [300], depths: [0.5, 1.5]}", "").find("task.depths"), std::string::npos);
  EXPECT_NE(err("{type: passkey, lengths: [300], needle: \"no slot\"}", "").find("{key}"), std::string::npos);
  EXPECT_NE(err("{type: passkey, lengths: [300, 300]}", "").find("once"), std::string::npos);
  EXPECT_EQ(err("{type: passkey, lengths: [300]}", ""), "");
  // tasks that read data still need data.path (no longer a required key of every experiment)
  EXPECT_NE(err("{type: perplexity}", "").find("data.path: required by task perplexity"), std::string::npos);
}

TEST(PasskeyTask, EmbeddedModelThroughTheBinary) {
  TempDir d;
  write_text(d / "p.yaml", "name: pk-embedded\nseed: 1\nmodel: {path: " + embedded_model().string() + "}\n"
                           "attention: {variant: vanilla}\n"
                           "task: {type: passkey, lengths: [128, 192, 320], depths: [0, 0.5, 1], samples: 2}\n"
                           "output: {dir: " + (d / "out").string() + "}\n");
  std::string out;
  ASSERT_EQ(run_command(lminf::testing::lminf_binary().string() + " run " + (d / "p.yaml").string(), &out), 0) << out;
  PasskeySpec spec;
  spec.lengths = {128, 192, 320};
  spec.depths = {0, 0.5, 1};
  expect_results_match_samples(d / "out", spec);
  // niah.csv: one row per cell, lengths x depths
  std::istringstream csv(read_text(d / "out" / "niah.csv"));
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line, "length_index,depth_index,length,depth,samples,correct,accuracy");
  int rows = 0;
  while (std::getline(csv, line)) ++rows;
  EXPECT_EQ(rows, 9);
  if (!find_gnuplot().empty()) {
    EXPECT_GT(fs::file_size(d / "out" / "niah_heatmap.png"), 1000u);
    EXPECT_TRUE(fs::exists(d / "out" / "niah_heatmap.svg"));
    EXPECT_TRUE(fs::exists(d / "out" / "niah_heatmap.gp"));
  }
  for (const auto& name : lminf::testing::dir_entries(d / "out")) EXPECT_EQ(name.find(".tmp"), std::string::npos) << name;
  EXPECT_NE(out.find("all "), std::string::npos) << out;  // the accuracy table on stdout
}

}  // namespace
}  // namespace lminf
