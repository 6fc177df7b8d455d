// Task pretrain: the loss falls on learnable data, the schedule is what it says, and a run resumed
// from a checkpoint ends with exactly the weights of an uninterrupted run.
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "experiments/tasks/pretrain_task.h"
#include "experiments/run/run_experiment.h"
#include "framework/io/checkpoint.h"
#include "support/test_support.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using lminf::testing::read_text;
using lminf::testing::TempDir;
using lminf::testing::write_text;

TEST(PretrainLr, WarmupThenCosine) {
  PretrainSpec s;
  s.lr = 1.0;
  s.min_lr = 0.1;
  s.warmup = 10;
  s.steps = 110;
  EXPECT_DOUBLE_EQ(pretrain_lr(s, 0), 0.1);
  EXPECT_DOUBLE_EQ(pretrain_lr(s, 9), 1.0);
  EXPECT_DOUBLE_EQ(pretrain_lr(s, 10), 1.0);
  EXPECT_NEAR(pretrain_lr(s, 60), 0.55, 1e-12);  // half way: (1 + 0.1) / 2
  EXPECT_NEAR(pretrain_lr(s, 110), 0.1, 1e-12);
}

class Pretrain : public ::testing::Test {
 protected:
  void SetUp() override {
    // Learnable documents: arithmetic sequences mod 40 (offset by 3 past the special ids).
    std::string docs;
    for (int d = 0; d < 24; ++d) {
      for (int i = 0; i < 60; ++i) docs += (i ? " " : "") + std::to_string(3 + (d * 7 + i * (1 + d % 3)) % 40);
      docs += "\n";
    }
    write_text(dir_ / "train.ids", docs);
    write_text(dir_ / "eval.ids", docs.substr(0, docs.find('\n') + 1));
  }
  std::string yaml(const fs::path& out, int steps, int ckpt_every) const {
    return "name: pt\nseed: 3\ndata: {path: " + (dir_ / "train.ids").string() +
           "}\ntask:\n  type: pretrain\n  model: {vocab_size: 48, hidden_size: 32, intermediate_size: 64, "
           "num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2}\n  context: 24\n  batch_size: 8\n"
           "  steps: " + std::to_string(steps) + "\n  lr: 0.01\n  min_lr: 0.001\n  warmup: 2\n  log_every: 100\n"
           "  eval_every: 0\n  eval_path: " + (dir_ / "eval.ids").string() + "\n  checkpoint_every: " +
           std::to_string(ckpt_every) + "\noutput: {dir: " + out.string() + "}\n";
  }
  void run(const fs::path& out, int steps, int ckpt_every) {
    write_text(dir_ / "pt.yaml", yaml(out, steps, ckpt_every));
    LocalCommunicator world;
    auto exp = load_experiment((dir_ / "pt.yaml").string(), {}, 1);
    run_experiment(exp, world);
  }
  TempDir dir_;
};

TEST_F(Pretrain, LossFallsAndModelLoads) {
  run(dir_ / "a", 60, 0);
  auto res = nlohmann::json::parse(read_text(dir_ / "a" / "results.json"));
  EXPECT_LT(res["eval_nll"].get<double>(), std::log(48.0) - 1.0) << res.dump();
  EXPECT_LT(res["final_train_loss"].get<double>(), std::log(48.0) - 1.0);
  // The output is a model folder the perplexity task reads.
  write_text(dir_ / "ppl.yaml", "name: p\nmodel: {path: " + (dir_ / "a" / "model").string() + "}\ndata: {path: " +
                                    (dir_ / "eval.ids").string() + "}\ntask: {type: perplexity, max_length: 24}\n"
                                    "output: {dir: " + (dir_ / "p").string() + "}\n");
  LocalCommunicator world;
  auto exp = load_experiment((dir_ / "ppl.yaml").string(), {}, 1);
  run_experiment(exp, world);
  auto ppl = nlohmann::json::parse(read_text(dir_ / "p" / "results.json"));
  EXPECT_NEAR(ppl["mean_nll"].get<double>(), res["eval_nll"].get<double>(), 1e-4);
}

TEST_F(Pretrain, ResumedRunEqualsUninterrupted) {
  run(dir_ / "full", 8, 4);
  ASSERT_TRUE(fs::exists(dir_ / "full" / "checkpoints" / "step_0000004" / "optimizer.pt"));
  // A run that stopped after step 4: only its checkpoint exists.
  fs::create_directories(dir_ / "resumed" / "checkpoints");
  fs::copy(dir_ / "full" / "checkpoints" / "step_0000004", dir_ / "resumed" / "checkpoints" / "step_0000004",
           fs::copy_options::recursive);
  run(dir_ / "resumed", 8, 4);
  auto res = nlohmann::json::parse(read_text(dir_ / "resumed" / "results.json"));
  EXPECT_EQ(res["resumed_from_step"], 4);
  Checkpoint a = Checkpoint::open(dir_ / "full" / "model"), b = Checkpoint::open(dir_ / "resumed" / "model");
  ASSERT_EQ(a.names(), b.names());
  for (const auto& n : a.names())
    EXPECT_TRUE(at::equal(a.load(n, at::kFloat), b.load(n, at::kFloat))) << n;
}

}  // namespace
}  // namespace lminf
