// The perplexity task end to end: YAML -> outputs, checked against the model run directly; and the
// error paths of `lminf run` (one clear message, non-zero exit, no half-written outputs).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "attention/registry.h"
#include "experiments/tasks/perplexity_task.h"
#include "experiments/run/run_experiment.h"
#include "framework/io/h5_file.h"
#include "experiments/data/token_data.h"
#include "models/model_config_json.h"
#include "models/random_checkpoint.h"
#include "support/test_support.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using lminf::testing::read_text;
using lminf::testing::TempDir;
using lminf::testing::write_text;

TEST(SummarizeNll, HandComputedBuckets) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  at::Tensor nll = at::tensor({1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 2.0f, 4.0f, nan, nan, nan}).view({2, 5});
  auto j = summarize_nll(nll, {5, 2}, 2);
  EXPECT_EQ(j["tokens"], 7);
  EXPECT_NEAR(j["mean_nll"].get<double>(), 21.0 / 7.0, 1e-12);
  EXPECT_NEAR(j["ppl"].get<double>(), std::exp(3.0), 1e-9);
  EXPECT_NEAR(j["mean_sequence_nll"].get<double>(), (3.0 + 3.0) / 2.0, 1e-12);
  ASSERT_EQ(j["buckets"].size(), 3u);
  EXPECT_NEAR(j["buckets"][0]["mean_nll"].get<double>(), (1 + 2 + 2 + 4) / 4.0, 1e-12);  // positions 0-1
  EXPECT_NEAR(j["buckets"][1]["mean_nll"].get<double>(), 3.5, 1e-12);                   // positions 2-3
  EXPECT_EQ(j["buckets"][2]["tokens"], 1);
  EXPECT_EQ(j["buckets"][2]["start"], 4);
}

class PerplexityRun : public ::testing::Test {
 protected:
  void SetUp() override {
    ModelConfig c = llama_preset("tiny");
    write_random_llama(dir_ / "model", c, 3);
    // Sequences of varied lengths, one longer than max_length.
    write_text(dir_ / "data.ids", "5 6 7 8 9 10 11\n\n12 13 14\n" + long_line(90) + "\n20 21\n");
  }
  static std::string long_line(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += (i ? " " : "") + std::to_string(3 + (i * 37) % 250);
    return s;
  }
  std::string yaml(const std::string& extra = "") const {
    return "name: t\n"
           "model: {path: " + (dir_ / "model").string() + ", dtype: float32}\n"
           "attention: {variant: vanilla, block_size: 16}\n"
           "data: {format: ids, path: " + (dir_ / "data.ids").string() + ", prepend_bos: true}\n"
           "task: {type: perplexity, max_length: 64, bucket: 16, batch_size: 3}\n"
           "output: {dir: " + (dir_ / "out").string() + "}\n" + extra;
  }
  TempDir dir_;
};

TEST_F(PerplexityRun, OutputsMatchDirectModelNll) {
  write_text(dir_ / "exp.yaml", yaml());
  LocalCommunicator world;
  auto exp = load_experiment((dir_ / "exp.yaml").string(), {}, 1);
  run_experiment(exp, world);

  ASSERT_TRUE(fs::exists(dir_ / "out" / "config.yaml"));
  EXPECT_NE(read_text(dir_ / "out" / "config.yaml").find("max_length: 64"), std::string::npos);
  auto res = nlohmann::json::parse(read_text(dir_ / "out" / "results.json"));
  H5Reader h5(dir_ / "out" / "token_nll.h5");
  at::Tensor nll = h5.read("token_nll");
  at::Tensor lengths = h5.read("lengths");
  EXPECT_EQ(h5.attr_string("/", "schema"), "lminf.token_nll");
  EXPECT_EQ(h5.attr_int("/", "schema_version"), 1);
  EXPECT_NE(h5.attr_string("/", "config").find("perplexity"), std::string::npos);
  EXPECT_TRUE(h5.has_attr("/", "git_revision"));
  ASSERT_EQ(nll.sizes(), (std::vector<int64_t>{4, 63}));
  // BOS + tokens, truncated to 64: NLL entries 7, 3, 63, 2.
  EXPECT_EQ(std::vector<int64_t>(lengths.data_ptr<int64_t>(), lengths.data_ptr<int64_t>() + 4),
            (std::vector<int64_t>{7, 3, 63, 2}));
  EXPECT_TRUE(std::isnan(nll[0][7].item<float>()));
  EXPECT_FALSE(std::isnan(nll[0][6].item<float>()));
  EXPECT_EQ(res["tokens"], 7 + 3 + 63 + 2);

  // Independent recomputation: the model on each sequence alone, no batching.
  ModelConfig c = load_model_config(dir_ / "model");
  auto model = load_model(dir_ / "model", c, LoadOptions{});
  auto attn = make_attention(AttentionSpec{});
  IdFileOptions io;
  io.prepend_bos = true;
  io.bos_id = 1;
  auto seqs = read_id_file(dir_ / "data.ids", io);
  double total = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    auto s = seqs[i];
    if (s.size() > 64) s.resize(64);
    at::Tensor x = at::tensor(s, at::kLong).unsqueeze(0);
    const int64_t T = x.size(1);
    at::Tensor h = model->forward(x.narrow(1, 0, T - 1), nullptr, ForwardContext{attn.get(), nullptr});
    at::Tensor want = model->token_nll(h, x.narrow(1, 1, T - 1))[0];
    EXPECT_LT((nll[static_cast<int64_t>(i)].narrow(0, 0, T - 1) - want).abs().max().item<float>(), 1e-5);
    total += want.sum().item<double>();
  }
  EXPECT_NEAR(res["mean_nll"].get<double>(), total / 75.0, 1e-5);
  EXPECT_EQ(res["provenance"]["variant"], "vanilla");
  EXPECT_EQ(res["schema"], "lminf.results");
  EXPECT_EQ(res["buckets"].size(), 4u);
}

TEST_F(PerplexityRun, RefusesToOverwriteUnlessAsked) {
  write_text(dir_ / "exp.yaml", yaml());
  LocalCommunicator world;
  auto exp = load_experiment((dir_ / "exp.yaml").string(), {}, 1);
  run_experiment(exp, world);
  const std::string first = read_text(dir_ / "out" / "results.json");
  auto again = load_experiment((dir_ / "exp.yaml").string(), {}, 1);
  try {
    run_experiment(again, world);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("output.overwrite"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_text(dir_ / "out" / "results.json"), first);
  auto forced = load_experiment((dir_ / "exp.yaml").string(), {"output.overwrite=true"}, 1);
  run_experiment(forced, world);
}

TEST_F(PerplexityRun, OverridesReachTheResolvedSpec) {
  write_text(dir_ / "exp.yaml", yaml());
  auto exp = load_experiment((dir_ / "exp.yaml").string(), {"task.max_length=32", "attention.block_size=5"}, 1);
  const std::string text = to_yaml_string(exp.resolved);
  EXPECT_NE(text.find("max_length: 32"), std::string::npos) << text;
  EXPECT_NE(text.find("block_size: 5"), std::string::npos) << text;
  EXPECT_NE(text.find("batch_size: 3"), std::string::npos) << text;
}

// ---- the binary: bad input gives one clear error, exit != 0, and no outputs ----

struct BadCase {
  std::string label;
  std::string mutate;  // appended or substituted YAML / data
  std::string expect;  // substring of the error
};

class BadInput : public PerplexityRun {
 protected:
  void expect_failure(const std::string& yaml_text, const std::string& expect, const std::string& extra_args = "") {
    write_text(dir_ / "bad.yaml", yaml_text);
    std::string out;
    const int rc = lminf::testing::run_command(
        lminf::testing::lminf_binary().string() + " run " + (dir_ / "bad.yaml").string() + " " + extra_args, &out);
    EXPECT_NE(rc, 0) << out;
    EXPECT_NE(out.find(expect), std::string::npos) << "expected \"" << expect << "\" in:\n" << out;
    EXPECT_NE(out.find("error"), std::string::npos) << out;
    EXPECT_FALSE(fs::exists(dir_ / "out" / "results.json"));
    EXPECT_FALSE(fs::exists(dir_ / "out" / "token_nll.h5"));
  }
  std::string replace(std::string s, const std::string& from, const std::string& to) {
    auto p = s.find(from);
    EXPECT_NE(p, std::string::npos) << from;
    return s.replace(p, from.size(), to);
  }
};

TEST_F(BadInput, UnknownKeyNamesFileLineAndValidKeys) {
  expect_failure(replace(yaml(), "block_size: 16", "block_sise: 16"), "bad.yaml:3");
  expect_failure(replace(yaml(), "block_size: 16", "block_sise: 16"), "did you mean \"block_size\"");
}

// A mistake in the task section does not hide one in another section: both are in one message.
TEST_F(BadInput, ProblemsOfSeveralSectionsComeTogether) {
  const std::string bad = replace(replace(replace(yaml(), "variant: vanilla", "variant: lamda"), "bucket: 16", "buckit: 16"),
                                  "block_size: 16", "block_sise: 16");
  for (const std::string expect : {"lamda", "did you mean \"lambda\"", "task.buckit", "did you mean \"bucket\"", "attention.block_sise"})
    expect_failure(bad, expect);
  // The task's problem and an unknown variant, with the rest of the spec clean.
  const std::string two = replace(replace(yaml(), "variant: vanilla", "variant: lamda"), "bucket: 16", "buckit: 16");
  for (const std::string expect : {"\"lamda\" is not one of", "did you mean \"lambda\"", "task.buckit"}) expect_failure(two, expect);
}

TEST_F(BadInput, WrongTypeNamesKey) {
  expect_failure(replace(yaml(), "max_length: 64", "max_length: lots"), "task.max_length");
}

TEST_F(BadInput, OverrideWithWrongTypeNamesTheSet) {
  expect_failure(yaml(), "--set task.bucket=wide", "--set task.bucket=wide");
}

TEST_F(BadInput, MissingModelFolder) {
  expect_failure(replace(yaml(), (dir_ / "model").string() + ",", (dir_ / "nope").string() + ","), "model.path");
}

TEST_F(BadInput, CorruptCheckpoint) {
  // Truncate the safetensors file: the header promises more bytes than exist.
  fs::resize_file(dir_ / "model" / "model.safetensors", fs::file_size(dir_ / "model" / "model.safetensors") - 100);
  expect_failure(yaml(), "model.safetensors");
}

TEST_F(BadInput, UnsupportedModelType) {
  std::string cfg = read_text(dir_ / "model" / "config.json");
  write_text(dir_ / "model" / "config.json", replace(cfg, "\"llama\"", "\"gpt2\""));
  expect_failure(yaml(), "model_type \"gpt2\" is not supported");
}

TEST_F(BadInput, DeviceThatIsNotOneNamesTheKey) {
  expect_failure(yaml(), "model.device: \"gpu\" is not a device", "--set model.device=gpu");
  expect_failure(yaml(), "is not a device", "--set model.device=cuda:x");
}

TEST_F(BadInput, CudaWithoutACudaBuildOrGpuIsRefusedBeforeLoading) {
  if (at::hasCUDA()) GTEST_SKIP() << "this build sees a GPU";
  expect_failure(yaml(), "CPU-only libtorch or sees no GPU", "--set model.device=cuda");
}

TEST_F(BadInput, MalformedConfigJsonNamesFileAndLine) {
  std::string cfg = read_text(dir_ / "model" / "config.json");
  write_text(dir_ / "model" / "config.json", replace(cfg, "\"hidden_size\":", "\"hidden_size\"::"));
  expect_failure(yaml(), "config.json: not valid JSON");
  expect_failure(yaml(), "at line ");
}

TEST_F(BadInput, MptOptionThatChangesTheMathIsRefused) {
  ModelConfig c = family_preset("tiny", "mpt");
  write_random_model(dir_ / "model", c, 3);
  std::string cfg = read_text(dir_ / "model" / "config.json");
  write_text(dir_ / "model" / "config.json", replace(cfg, "\"qk_ln\": false", "\"qk_ln\": true"));
  expect_failure(yaml(), "attn_config.qk_ln=true is not supported");
}

TEST_F(BadInput, UnsupportedDtype) {
  expect_failure(replace(yaml(), "dtype: float32", "dtype: int8"), "model.dtype");
}

TEST_F(BadInput, TokenOutsideVocabulary) {
  write_text(dir_ / "data.ids", "5 6 7\n8 9999 10\n");
  expect_failure(yaml(), "data.ids:2:3: token id 9999 is outside the model's vocabulary");
}

TEST_F(BadInput, EmptyDataFile) {
  write_text(dir_ / "data.ids", "\n\n");
  expect_failure(yaml(), "holds no sequences");
}

TEST_F(BadInput, UnwritableOutputFolder) {
  write_text(dir_ / "afile", "x");
  expect_failure(replace(yaml(), "dir: " + (dir_ / "out").string(), "dir: " + (dir_ / "afile" / "out").string()),
                 "output.dir");
}

TEST_F(BadInput, UnknownTaskAndVariantReportedTogether) {
  std::string y = replace(yaml(), "variant: vanilla", "variant: lambada");
  expect_failure(y, "lambada");
  expect_failure(replace(yaml(), "type: perplexity", "type: perplexty"), "did you mean \"perplexity\"");
}

TEST_F(BadInput, TensorParallelWithoutRanks) {
  expect_failure(yaml("parallel: {tensor_parallel: 2}\n"), "must equal the number of ranks");
}

TEST_F(BadInput, NcclCommunicatorOnACpuModel) {
  expect_failure(yaml("parallel: {communicator: nccl}\n"), "parallel.communicator: nccl needs model.device: cuda");
  expect_failure(yaml("parallel: {communicator: gloo}\n"), "parallel.communicator");
}

// ---- the real model through the whole pipeline ----

TEST(PerplexityStories260k, MatchesIndependentReference) {
  auto dir = lminf::testing::shared_fixture("stories260k");
  if (dir.empty()) GTEST_SKIP() << "../shared/fixtures/stories260k absent";
  TempDir tmp;
  write_text(tmp / "exp.yaml", "name: stories\nmodel: {path: " + dir.string() +
                                   "}\ndata: {path: " + (dir / "stories.ids").string() +
                                   ", max_sequences: 20}\ntask: {type: perplexity, max_length: 4096, bucket: 128, "
                                   "batch_size: 4}\noutput: {dir: " + (tmp / "out").string() + "}\n");
  std::string out;
  ASSERT_EQ(lminf::testing::run_command(lminf::testing::lminf_binary().string() + " run " + (tmp / "exp.yaml").string(), &out), 0) << out;
  auto res = nlohmann::json::parse(read_text(tmp / "out" / "results.json"));
  std::ifstream tsv(dir / "stories_nll.tsv");
  std::string header;
  std::getline(tsv, header);
  double sum = 0;
  int64_t tokens = 0;
  int64_t index, n;
  double s, m;
  while (tsv >> index >> n >> s >> m && index < 20) {
    sum += s;
    tokens += n;
  }
  EXPECT_EQ(res["tokens"], tokens);
  EXPECT_NEAR(res["mean_nll"].get<double>(), sum / static_cast<double>(tokens), 1e-4 * sum / tokens);
}

}  // namespace
}  // namespace lminf
