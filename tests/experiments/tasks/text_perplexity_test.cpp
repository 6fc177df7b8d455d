// Perplexity over raw text (text files, JSONL with filters, JSONL.zst) tokenized on the fly, with a
// tiny random model whose vocabulary matches a SentencePiece tokenizer trained here; checked against
// the model run directly on the tokenizer's ids. Plus the `lminf tokenize` / `train-tokenizer`
// commands and the errors for tokenizers that do not fit.
#include <gtest/gtest.h>

#include <zstd.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "attention/registry.h"
#include "experiments/run/run_experiment.h"
#include "framework/io/h5_file.h"
#include "experiments/data/token_data.h"
#include "framework/text/tokenizer.h"
#include "models/model_config_json.h"
#include "models/random_checkpoint.h"
#include "support/test_support.h"
#include "support/tokenizer_fixtures.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using lminf::testing::lminf_binary;
using lminf::testing::read_text;
using lminf::testing::run_command;
using lminf::testing::TempDir;
using lminf::testing::write_text;

constexpr int64_t kVocab = 800;

std::vector<std::string> documents() {
  std::vector<std::string> d;
  const auto texts = lminf::testing::multilingual_texts();
  for (size_t i = 0; i < 6; ++i) {
    std::string s;
    for (size_t k = 0; k <= i; ++k) s += texts[(i * 5 + k * 3) % texts.size()] + (k % 2 ? "\n" : " ");
    s += "the model reads a long context with attention " + std::to_string(i);
    d.push_back(s);
  }
  return d;
}

std::string zstd_compress(const std::string& s) {
  std::string out(ZSTD_compressBound(s.size()), '\0');
  out.resize(ZSTD_compress(out.data(), out.size(), s.data(), s.size(), 3));
  return out;
}

class TextPerplexity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const fs::path model = dir_->path() / "model";
    lminf::testing::train_tiny_sentencepiece(model, lminf::testing::training_corpus(), kVocab);
    ModelConfig c = llama_preset("tiny");
    c.vocab_size = kVocab;
    write_random_llama(model, c, 5);
    // text: one document per file; jsonl: Pile-style records, two subsets, one malformed line
    const auto docs = documents();
    fs::create_directories(dir_->path() / "texts");
    std::string jsonl;
    for (size_t i = 0; i < docs.size(); ++i) {
      write_text(dir_->path() / "texts" / ("doc" + std::to_string(i) + ".txt"), docs[i]);
      jsonl += json({{"text", docs[i]}, {"meta", {{"pile_set_name", i % 2 ? "ArXiv" : "Github"}}}}).dump() + "\n";
      if (i == 2) jsonl += "{\"text\": \"cut off\n";
    }
    write_text(dir_->path() / "pile.jsonl", jsonl);
    write_text(dir_->path() / "pile.jsonl.zst", zstd_compress(jsonl));
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path root() { return dir_->path(); }

  std::string yaml(const std::string& data, const std::string& out, int64_t max_length = 48) const {
    return "name: text\n"
           "model: {path: " + (root() / "model").string() + "}\n"
           "attention: {variant: vanilla, block_size: 16}\n"
           "data: " + data + "\n"
           "task: {type: perplexity, max_length: " + std::to_string(max_length) + ", bucket: 16, batch_size: 2}\n"
           "output: {dir: " + (work_ / out).string() + "}\n";
  }
  json run(const std::string& data, const std::string& out, int64_t max_length = 48) {
    write_text(work_ / (out + ".yaml"), yaml(data, out, max_length));
    LocalCommunicator world;
    auto exp = load_experiment((work_ / (out + ".yaml")).string(), {}, 1);
    run_experiment(exp, world);
    return json::parse(read_text(work_ / out / "results.json"));
  }
  // Mean NLL of the model run directly on `docs` tokenized here (BOS, then truncation).
  double direct_mean_nll(const std::vector<std::string>& docs, int64_t max_length, const std::string& truncation) {
    auto tok = load_tokenizer(root() / "model");
    ModelConfig c = load_model_config(root() / "model");
    auto model = load_model(root() / "model", c, LoadOptions{});
    auto attn = make_attention(AttentionSpec{});
    double total = 0;
    int64_t n = 0;
    for (const auto& d : docs) {
      std::vector<int64_t> ids = {c.bos_token_id};
      for (int64_t id : tok->encode(d, false)) ids.push_back(id);
      truncate_tokens(ids, max_length, truncation);
      at::Tensor x = at::tensor(ids, at::kLong).unsqueeze(0);
      const int64_t T = x.size(1);
      at::Tensor h = model->forward(x.narrow(1, 0, T - 1), nullptr, ForwardContext{attn.get(), nullptr});
      total += model->token_nll(h, x.narrow(1, 1, T - 1)).sum().item<double>();
      n += T - 1;
    }
    return total / static_cast<double>(n);
  }

  static TempDir* dir_;
  TempDir work_;
};
TempDir* TextPerplexity::dir_ = nullptr;

TEST_F(TextPerplexity, TextFilesMatchTheModelRunDirectly) {
  const auto docs = documents();
  for (const std::string trunc : {"right", "center", "left"}) {
    const json r = run("{format: text, path: " + (root() / "texts").string() + ", truncation: " + trunc + "}", "t-" + trunc);
    EXPECT_EQ(r["sequences"], 6);
    EXPECT_EQ(r["data"]["documents"], 6);
    EXPECT_EQ(r["data"]["skipped_total"], 0);
    EXPECT_NEAR(r["mean_nll"].get<double>(), direct_mean_nll(docs, 48, trunc), 1e-5) << trunc;
  }
}

TEST_F(TextPerplexity, JsonlFilterSkipsAndZstdAgree) {
  const auto docs = documents();
  const std::vector<std::string> arxiv = {docs[1], docs[3], docs[5]};
  const std::string filter = ", filter: {meta.pile_set_name: ArXiv}, truncation: center}";
  const json plain = run("{format: jsonl, path: " + (root() / "pile.jsonl").string() + filter, "jsonl", 37);
  EXPECT_EQ(plain["sequences"], 3);
  EXPECT_EQ(plain["data"]["filtered_out"], 3);
  EXPECT_EQ(plain["data"]["skipped"]["malformed JSON"], 1);
  EXPECT_NE(plain["data"]["first_skipped"][0].get<std::string>().find("pile.jsonl:4: malformed JSON"), std::string::npos)
      << plain["data"];
  EXPECT_NEAR(plain["mean_nll"].get<double>(), direct_mean_nll(arxiv, 37, "center"), 1e-5);
  const json zst = run("{format: jsonl.zst, path: " + (root() / "pile.jsonl.zst").string() + filter, "zst", 37);
  EXPECT_EQ(zst["mean_nll"], plain["mean_nll"]);
  EXPECT_EQ(zst["data"]["skipped"], plain["data"]["skipped"]);
}

TEST_F(TextPerplexity, SkippedRecordsAreReportedOnStderr) {
  write_text(work_ / "exp.yaml", yaml("{format: jsonl, path: " + (root() / "pile.jsonl").string() + "}", "cli"));
  std::string out;
  ASSERT_EQ(run_command(lminf_binary().string() + " run " + (work_ / "exp.yaml").string(), &out), 0) << out;
  EXPECT_NE(out.find("pile.jsonl:4: malformed JSON"), std::string::npos) << out;
  EXPECT_NE(out.find("skipped 1 of 7 records (1 malformed JSON)"), std::string::npos) << out;
}

TEST_F(TextPerplexity, TokenizersThatDoNotFitAreRefusedBeforeAnyWeightIsRead) {
  // a model with fewer embedding rows than the tokenizer has ids
  ModelConfig c = llama_preset("tiny");
  c.vocab_size = 256;
  write_random_llama(work_ / "small", c, 1);
  const std::string data = "{format: text, path: " + (root() / "texts").string() + ", tokenizer: " + (root() / "model").string() + "}";
  write_text(work_ / "a.yaml", yaml(data, "a"));
  std::string text = read_text(work_ / "a.yaml");
  text.replace(text.find((root() / "model").string() + "}"), (root() / "model").string().size(), (work_ / "small").string());
  write_text(work_ / "a.yaml", text);
  std::string out;
  EXPECT_NE(run_command(lminf_binary().string() + " run " + (work_ / "a.yaml").string(), &out), 0);
  EXPECT_NE(out.find("data.tokenizer: the tokenizer"), std::string::npos) << out;
  EXPECT_NE(out.find("has 800 ids but the model"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(work_ / "a" / "config.yaml"));

  // no tokenizer in the model folder
  write_text(work_ / "b.yaml", "name: b\nmodel: {path: " + (work_ / "small").string() + "}\ndata: {format: text, path: " +
                                   (root() / "texts").string() + "}\ntask: {type: perplexity}\noutput: {dir: " +
                                   (work_ / "b").string() + "}\n");
  EXPECT_NE(run_command(lminf_binary().string() + " run " + (work_ / "b.yaml").string(), &out), 0);
  EXPECT_NE(out.find("no tokenizer found (looked for tokenizer.json and tokenizer.model)"), std::string::npos) << out;

  // keys that do not apply, a filter that is not a map, a glob without matches
  write_text(work_ / "c.yaml", yaml("{format: text, path: " + (root() / "nothing*.txt").string() + ", filter: [a, b], text_field: body}", "c"));
  EXPECT_NE(run_command(lminf_binary().string() + " run " + (work_ / "c.yaml").string(), &out), 0);
  EXPECT_NE(out.find("data.filter applies to the jsonl formats only"), std::string::npos) << out;
  EXPECT_NE(out.find("data.path: no file matches"), std::string::npos) << out;
  EXPECT_NE(out.find("data.text_field applies to the jsonl formats only"), std::string::npos) << out;
  write_text(work_ / "d.yaml", yaml("{format: jsonl, path: " + (root() / "pile.jsonl").string() + ", filter: [a, b]}", "d"));
  EXPECT_NE(run_command(lminf_binary().string() + " run " + (work_ / "d.yaml").string(), &out), 0);
  EXPECT_NE(out.find("data.filter must be a map of field paths to values"), std::string::npos) << out;
  write_text(work_ / "e.yaml", yaml("{format: jsonl, path: " + (root() / "pile.jsonl").string() + ", truncation: middle}", "e"));
  EXPECT_NE(run_command(lminf_binary().string() + " run " + (work_ / "e.yaml").string(), &out), 0);
  EXPECT_NE(out.find("data.truncation"), std::string::npos) << out;
}

TEST_F(TextPerplexity, EveryRecordFilteredOutIsAnError) {
  write_text(work_ / "f.yaml", yaml("{format: jsonl, path: " + (root() / "pile.jsonl").string() +
                                        ", filter: {meta.pile_set_name: PubMed}}", "f"));
  std::string out;
  EXPECT_NE(run_command(lminf_binary().string() + " run " + (work_ / "f.yaml").string(), &out), 0);
  EXPECT_NE(out.find("yields no sequences (7 records, 6 filtered out by data.filter, 1 skipped)"), std::string::npos) << out;
}

// ---- the commands ------------------------------------------------------------------------------

TEST_F(TextPerplexity, TokenizeCommandRoundTripsAndAddsBos) {
  const std::string bin = lminf_binary().string(), dir = (root() / "model").string();
  const std::string text = "the model\n  reads \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\xA4\x97 text\n";
  write_text(work_ / "in.txt", text);
  std::string ids, back, with;
  ASSERT_EQ(run_command(bin + " tokenize " + dir + " --no-special-tokens < " + (work_ / "in.txt").string() + " 2>/dev/null", &ids), 0) << ids;
  ASSERT_EQ(run_command(bin + " tokenize " + dir + " < " + (work_ / "in.txt").string() + " 2>/dev/null", &with), 0) << with;
  EXPECT_EQ(with, "1 " + ids);
  write_text(work_ / "ids.txt", ids);
  ASSERT_EQ(run_command(bin + " tokenize " + dir + " --decode < " + (work_ / "ids.txt").string() + " 2>/dev/null", &back), 0);
  EXPECT_EQ(back, text);
  // ids outside the vocabulary, and invalid UTF-8 input
  write_text(work_ / "bad.txt", "5 99999\n");
  EXPECT_NE(run_command(bin + " tokenize " + dir + " --decode < " + (work_ / "bad.txt").string(), &back), 0);
  EXPECT_NE(back.find("token id 99999 is not in the vocabulary"), std::string::npos) << back;
  write_text(work_ / "bad.txt", "ok \xFF");
  EXPECT_NE(run_command(bin + " tokenize " + dir + " < " + (work_ / "bad.txt").string(), &back), 0);
  EXPECT_NE(back.find("stdin: invalid UTF-8 at byte 3"), std::string::npos) << back;
}

TEST_F(TextPerplexity, TrainTokenizerCommandWritesALoadableTokenizer) {
  fs::create_directories(work_ / "corpus" / "sub");
  write_text(work_ / "corpus" / "a.txt", lminf::testing::training_corpus());
  write_text(work_ / "corpus" / "sub" / "b.info", "GNU info manuals are plain text too.\nFile: x,  Node: Top\n");
  std::string out;
  ASSERT_EQ(run_command(lminf_binary().string() + " train-tokenizer " + (work_ / "tok").string() + " " +
                            (work_ / "corpus").string() + " --vocab-size 800 --model-type unigram --character-coverage 1.0",
                        &out),
            0)
      << out;
  EXPECT_NE(out.find("800 pieces, unigram, from 2 files"), std::string::npos) << out;
  EXPECT_TRUE(fs::exists(work_ / "tok" / "tokenizer.model"));
  const json cfg = json::parse(read_text(work_ / "tok" / "tokenizer_config.json"));
  EXPECT_EQ(cfg["add_bos_token"], true);
  auto tok = load_tokenizer(work_ / "tok");
  EXPECT_EQ(tok->vocab_size(), 800);
  EXPECT_TRUE(tok->round_trips());
  EXPECT_NE(run_command(lminf_binary().string() + " train-tokenizer " + (work_ / "tok2").string() + " " +
                            (work_ / "corpus").string() + " --model-type wordpiece",
                        &out),
            0);
  EXPECT_NE(out.find("--model-type \"wordpiece\" (use bpe or unigram)"), std::string::npos) << out;
}

TEST_F(TextPerplexity, AnInstalledTreeLoadsItsOwnShim) {
  // cmake --install puts PREFIX/bin/lminf and PREFIX/lib/lminf/liblminf_spm_shim.so; the installed
  // binary must find the installed shim (before the build tree's), so the tree can be moved.
  if (run_command("command -v cmake") != 0) GTEST_SKIP() << "cmake is not available";
  std::string out;
  const fs::path prefix = work_ / "inst";
  ASSERT_EQ(run_command("cmake --install " + lminf_binary().parent_path().string() + " --prefix " + prefix.string(), &out), 0)
      << out;
  ASSERT_TRUE(fs::exists(prefix / "lib" / "lminf" / "liblminf_spm_shim.so")) << out;
  fs::rename(prefix, work_ / "moved");
  write_text(work_ / "in.txt", "the model");
  ASSERT_EQ(run_command((work_ / "moved" / "bin" / "lminf").string() + " tokenize " + (root() / "model").string() +
                            " --log-level debug < " + (work_ / "in.txt").string(),
                        &out),
            0)
      << out;
  EXPECT_NE(out.find("SentencePiece shim " + (work_ / "moved" / "lib" / "lminf" / "liblminf_spm_shim.so").string()),
            std::string::npos)
      << out;
}

}  // namespace
}  // namespace lminf
