// SentencePiece through the dlmopen'ed shim, checked against Debian's own spm_encode / spm_decode
// command-line tools on models trained here (BPE and unigram) from generated multilingual text.
#include <gtest/gtest.h>

#include <sstream>

#include "framework/core/error.h"
#include "framework/text/sentencepiece_tokenizer.h"
#include "framework/text/tokenizer.h"
#include "support/test_support.h"
#include "support/tokenizer_fixtures.h"

namespace lminf {
namespace {
using lminf::testing::read_text;
using lminf::testing::run_command;
using lminf::testing::TempDir;
using lminf::testing::write_text;
namespace fs = std::filesystem;

class SentencePiece : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const std::string corpus = lminf::testing::training_corpus();
    lminf::testing::train_tiny_sentencepiece(dir_->path() / "bpe", corpus, 800, "bpe");
    lminf::testing::train_tiny_sentencepiece(dir_->path() / "unigram", corpus, 800, "unigram");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path model_dir(const std::string& type) { return dir_->path() / type; }

  // The lines of the multilingual texts (spm_encode reads one sentence per line).
  static std::vector<std::string> lines() {
    std::vector<std::string> out;
    for (const auto& t : lminf::testing::multilingual_texts()) {
      std::istringstream in(t);
      std::string line;
      while (std::getline(in, line))
        if (line.find('\r') == std::string::npos) out.push_back(line);
    }
    return out;
  }

  static TempDir* dir_;
};
TempDir* SentencePiece::dir_ = nullptr;

std::vector<std::vector<int64_t>> parse_id_lines(const std::string& text) {
  std::vector<std::vector<int64_t>> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::vector<int64_t> ids;
    int64_t x;
    while (ls >> x) ids.push_back(x);
    out.push_back(ids);
  }
  return out;
}

TEST_F(SentencePiece, EncodeAndDecodeMatchSpmCommandLineTools) {
  if (run_command("command -v spm_encode") != 0)
    GTEST_SKIP() << "spm_encode is not installed (Debian package sentencepiece; scripts/setup.sh installs it)";
  const std::vector<std::string> input = lines();
  ASSERT_GT(input.size(), 20u);
  TempDir d;
  std::string joined;
  for (const auto& l : input) joined += l + "\n";
  write_text(d / "in.txt", joined);
  for (const std::string type : {"bpe", "unigram"}) {
    const fs::path model = model_dir(type) / "tokenizer.model";
    std::string out;
    ASSERT_EQ(run_command("spm_encode --model=" + model.string() + " --output_format=id < " + (d / "in.txt").string() +
                              " > " + (d / "ids.txt").string()),
              0);
    const auto expected = parse_id_lines(read_text(d / "ids.txt"));
    ASSERT_EQ(expected.size(), input.size());
    SentencePieceTokenizer tok(model, TokenizerConfig::from_dir(model_dir(type)));
    for (size_t i = 0; i < input.size(); ++i) EXPECT_EQ(tok.encode_plain(input[i]), expected[i]) << type << ": " << input[i];

    ASSERT_EQ(run_command("spm_decode --model=" + model.string() + " --input_format=id < " + (d / "ids.txt").string() +
                              " > " + (d / "back.txt").string()),
              0);
    std::istringstream back(read_text(d / "back.txt"));
    std::string line;
    for (size_t i = 0; i < input.size() && std::getline(back, line); ++i) {
      std::vector<int64_t> ids = expected[i];
      EXPECT_EQ(tok.decode(ids), line) << type << ": " << input[i];
    }
  }
}

TEST_F(SentencePiece, IdentityNormalizationWithByteFallbackRoundTrips) {
  for (const std::string type : {"bpe", "unigram"}) {
    auto tok = load_tokenizer(model_dir(type));
    EXPECT_TRUE(tok->round_trips()) << type;
    EXPECT_EQ(tok->vocab_size(), 800);
    for (const auto& text : lminf::testing::multilingual_texts()) {
      if (text.find('<') != std::string::npos) continue;  // special-token text is split out, see below
      EXPECT_EQ(tok->decode(tok->encode(text, false)), text) << type;
    }
  }
}

TEST_F(SentencePiece, SpecialTokensBosEosAndConfig) {
  auto tok = load_tokenizer(model_dir("bpe"));
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  const auto plain = tok->encode("the model", false);
  auto with = tok->encode("the model", true);
  ASSERT_EQ(with.size(), plain.size() + 1);
  EXPECT_EQ(with.front(), 1);
  // control symbols written in the text are their ids; each run between them has its dummy prefix
  const auto ids = tok->encode("<s>the model</s>", false);
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(ids.back(), 2);
  EXPECT_EQ(std::vector<int64_t>(ids.begin() + 1, ids.end() - 1), plain);
  EXPECT_EQ(tok->decode(ids), "<s>the model</s>");
  EXPECT_EQ(tok->decode(ids, /*skip_special=*/true), "the model");
  EXPECT_NE(tok->description().find("SentencePiece, 800 pieces, byte fallback"), std::string::npos);

  // tokenizer_config.json decides what add_special adds
  TempDir d;
  fs::copy_file(model_dir("bpe") / "tokenizer.model", d / "tokenizer.model");
  write_text(d / "tokenizer_config.json", R"({"add_bos_token": false, "add_eos_token": true, "eos_token": "</s>"})");
  with = load_tokenizer(d.path())->encode("the model", true);
  EXPECT_EQ(with.front(), plain.front());
  EXPECT_EQ(with.back(), 2);
  write_text(d / "tokenizer_config.json", R"({"bos_token": "<start>"})");
  try {
    load_tokenizer(d.path());
    ADD_FAILURE() << "a bos_token that is no piece must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bos_token \"<start>\" is not a piece"), std::string::npos) << e.what();
  }
}

TEST_F(SentencePiece, NfkcModelDoesNotPromiseRoundTrips) {
  TempDir d;
  write_text(d / "c.txt", lminf::testing::training_corpus());
  SpmTrainOptions o;
  o.inputs = {d / "c.txt"};
  o.output_dir = d / "nfkc";
  o.vocab_size = 700;
  o.normalization = "nmt_nfkc";
  o.character_coverage = 1.0;
  o.num_threads = 1;
  train_sentencepiece(o);
  auto tok = load_tokenizer(d / "nfkc");
  EXPECT_FALSE(tok->round_trips());
  EXPECT_NE(tok->decode(tok->encode("a  b", false)), "a  b");  // whitespace runs collapse
}

TEST_F(SentencePiece, DamagedModelAndTrainingErrorsAreClear) {
  TempDir d;
  write_text(d / "tokenizer.model", "this is not a protobuf");
  try {
    load_tokenizer(d.path());
    ADD_FAILURE() << "a damaged model must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a SentencePiece model"), std::string::npos) << e.what();
  }
  SpmTrainOptions o;
  o.inputs = {d / "missing.txt"};
  o.output_dir = d / "out";
  try {
    train_sentencepiece(o);
    ADD_FAILURE() << "a missing input must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.txt is not a file"), std::string::npos) << e.what();
  }
  write_text(d / "tiny.txt", "abc\n");
  o.inputs = {d / "tiny.txt"};
  o.vocab_size = 10;  // smaller than the 256 byte pieces
  try {
    train_sentencepiece(o);
    ADD_FAILURE() << "an impossible vocabulary size must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Vocabulary size is smaller than required_chars"), std::string::npos) << e.what();
  }
}

TEST(SpmShim, IsFoundAndLinksNoTorch) {
  const fs::path p = spm_shim_path();
  EXPECT_TRUE(fs::exists(p)) << p;
  std::string out;
  if (run_command("command -v ldd") != 0) GTEST_SKIP() << "ldd is not available";
  ASSERT_EQ(run_command("ldd " + p.string(), &out), 0) << out;
  EXPECT_NE(out.find("libsentencepiece"), std::string::npos) << out;
  EXPECT_EQ(out.find("torch"), std::string::npos) << "the shim must not link libtorch:\n" << out;
  EXPECT_EQ(out.find("protobuf"), std::string::npos) << "the shim must not link a system protobuf:\n" << out;
}

}  // namespace
}  // namespace lminf
