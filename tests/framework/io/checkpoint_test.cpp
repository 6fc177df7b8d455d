#include "framework/io/checkpoint.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "framework/core/error.h"
#include "support/test_support.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using lminf::testing::TempDir;
using Named = std::vector<std::pair<std::string, at::Tensor>>;

void expect_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no Error thrown; expected one mentioning '" << parts.front() << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

// A tiny two-layer Llama-shaped state dict with mixed dtypes and sizes.
Named tiny_model() {
  at::Generator gen = at::detail::createCPUGenerator(42);
  auto randn = [&](std::vector<int64_t> shape, at::ScalarType dt = at::kFloat) {
    return at::randn(shape, gen, at::TensorOptions().dtype(at::kFloat)).to(dt);
  };
  Named t;
  t.emplace_back("model.embed_tokens.weight", randn({37, 16}));
  for (int l = 0; l < 2; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    t.emplace_back(p + "input_layernorm.weight", randn({16}));
    t.emplace_back(p + "self_attn.q_proj.weight", randn({16, 16}, at::kBFloat16));
    t.emplace_back(p + "self_attn.k_proj.weight", randn({8, 16}, at::kHalf));
    t.emplace_back(p + "self_attn.v_proj.weight", randn({8, 16}));
    t.emplace_back(p + "self_attn.o_proj.weight", randn({16, 16}));
    t.emplace_back(p + "mlp.gate_proj.weight", randn({43, 16}));
  }
  t.emplace_back("model.norm.weight", randn({16}));
  t.emplace_back("model.rotary.steps", at::arange(5, at::kLong));
  return t;
}

TEST(Checkpoint, ThreeShardsLoadTheSameTensorsAsOneFile) {
  TempDir tmp;
  const Named tensors = tiny_model();
  write_checkpoint(tmp / "single", tensors);
  write_checkpoint(tmp / "sharded", tensors, 3);
  EXPECT_TRUE(fs::exists(tmp / "single" / "model.safetensors"));
  EXPECT_FALSE(fs::exists(tmp / "single" / "model.safetensors.index.json"));
  for (int i = 1; i <= 3; ++i)
    EXPECT_TRUE(fs::exists(tmp / "sharded" / ("model-0000" + std::to_string(i) + "-of-00003.safetensors")));

  auto index = nlohmann::json::parse(lminf::testing::read_text(tmp / "sharded" / "model.safetensors.index.json"));
  uint64_t total = 0;
  for (const auto& [name, t] : tensors) total += t.numel() * t.element_size();
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), total);
  EXPECT_EQ(index["weight_map"].size(), tensors.size());

  Checkpoint one = Checkpoint::open(tmp / "single");
  Checkpoint three = Checkpoint::open(tmp / "sharded");
  EXPECT_EQ(three.dir(), tmp / "sharded");
  EXPECT_EQ(one.names(), three.names());
  EXPECT_EQ(one.names().size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(three.has(name));
    EXPECT_EQ(three.info(name).shape, t.sizes().vec());
    at::Tensor from_three = three.load(name, t.scalar_type());
    EXPECT_TRUE(at::equal(from_three, t));
    EXPECT_TRUE(at::equal(one.load(name, t.scalar_type()), from_three));
    EXPECT_TRUE(at::equal(one.load_slice(name, 0, 1, 2, at::kDouble), t.narrow(0, 1, 2).to(at::kDouble)));
    EXPECT_TRUE(at::equal(three.load_slice(name, 0, 1, 2, at::kDouble), t.narrow(0, 1, 2).to(at::kDouble)));
  }
  EXPECT_EQ(one.bytes_read(), three.bytes_read());  // summed over the shards
}

TEST(Checkpoint, MissingShardIsAnError) {
  TempDir tmp;
  write_checkpoint(tmp.path(), tiny_model(), 3);
  fs::remove(tmp / "model-00002-of-00003.safetensors");
  expect_error([&] { Checkpoint::open(tmp.path()); },
               {(tmp / "model.safetensors.index.json").string(), "shard 'model-00002-of-00003.safetensors'",
                "missing", "re-download"});
}

TEST(Checkpoint, IndexNamingATensorItsShardLacksIsAnError) {
  TempDir tmp;
  write_checkpoint(tmp.path(), tiny_model(), 2);
  auto index = nlohmann::json::parse(lminf::testing::read_text(tmp / "model.safetensors.index.json"));
  index["weight_map"]["lm_head.weight"] = "model-00001-of-00002.safetensors";
  lminf::testing::write_text(tmp / "model.safetensors.index.json", index.dump());
  expect_error([&] { Checkpoint::open(tmp.path()); },
               {"model.safetensors.index.json", "tensor 'lm_head.weight'", "model-00001-of-00002.safetensors",
                "does not contain it"});
}

TEST(Checkpoint, FolderWithoutSafetensorsIsAnError) {
  TempDir tmp;
  expect_error([&] { Checkpoint::open(tmp.path()); },
               {tmp.path().string(), "no model.safetensors or model.safetensors.index.json",
                "save_pretrained(", "safe_serialization=True)"});
  lminf::testing::write_text(tmp / "pytorch_model.bin", "not a zip");
  expect_error([&] { Checkpoint::open(tmp.path()); },
               {tmp.path().string(), "no model.safetensors or model.safetensors.index.json", "pytorch_model.bin",
                "save_pretrained(", "safe_serialization=True)"});
  expect_error([&] { Checkpoint::open(tmp / "nowhere"); }, {"nowhere", "no such folder"});
}

TEST(Checkpoint, CheckShapeNamesTheTensorAndBothShapes) {
  TempDir tmp;
  write_checkpoint(tmp.path(), {{"model.layers.0.self_attn.q_proj.weight", at::zeros({64, 64})}});
  Checkpoint ck = Checkpoint::open(tmp.path());
  ck.check_shape("model.layers.0.self_attn.q_proj.weight", {64, 64});
  expect_error([&] { ck.check_shape("model.layers.0.self_attn.q_proj.weight", {128, 64}); },
               {tmp.path().string() + ": tensor 'model.layers.0.self_attn.q_proj.weight' has shape [64, 64] but "
                                      "config.json implies [128, 64] (the checkpoint does not match its config.json)"});
}

TEST(Checkpoint, MissingTensorNameListsCloseNames) {
  TempDir tmp;
  write_checkpoint(tmp.path(), tiny_model(), 2);
  Checkpoint ck = Checkpoint::open(tmp.path());
  EXPECT_FALSE(ck.has("model.layers.0.self_attn.q_proj.bias"));
  expect_error([&] { ck.load("model.layers.0.self_attn.q_proj.bias", at::kFloat); },
               {tmp.path().string(), "no tensor 'model.layers.0.self_attn.q_proj.bias'",
                "'model.layers.0.self_attn.q_proj.weight'"});
}

TEST(Checkpoint, IsMemoryMappedNotRead) {
  TempDir tmp;
  const int64_t big = 8 * 1024 * 1024;  // 32 MiB of float32
  write_checkpoint(tmp.path(), {{"big", at::zeros({big})}, {"small", at::arange(8, at::kFloat)}}, 2);
  Checkpoint ck = Checkpoint::open(tmp.path());
  EXPECT_EQ(ck.bytes_read(), 0u);
  EXPECT_TRUE(at::equal(ck.load("small", at::kFloat), at::arange(8, at::kFloat)));
  EXPECT_EQ(ck.bytes_read(), 8u * 4);
  // A tensor-parallel rank's rows of the big tensor: only they are read.
  ck.load_slice("big", 0, big / 4, big / 4, at::kFloat);
  EXPECT_EQ(ck.bytes_read(), 8u * 4 + static_cast<uint64_t>(big));
}

TEST(Checkpoint, SingleFileAfterShardsReplacesTheStaleIndex) {
  TempDir tmp;
  write_checkpoint(tmp.path(), tiny_model(), 3);
  write_checkpoint(tmp.path(), {{"only", at::ones({3})}});
  EXPECT_FALSE(fs::exists(tmp / "model.safetensors.index.json"));
  EXPECT_EQ(Checkpoint::open(tmp.path()).names(), std::vector<std::string>{"only"});
  expect_error([&] { write_checkpoint(tmp.path(), {{"a", at::ones({1})}}, 2); }, {"1 tensors into 2 shards"});
}

TEST(Checkpoint, OpensTheSharedStories260kFixture) {
  const fs::path dir = fs::path(std::string(LMINF_SHARED_DIR) + "/fixtures/stories260k");
  if (!fs::exists(dir / "model.safetensors")) GTEST_SKIP() << "shared fixtures absent";
  Checkpoint ck = Checkpoint::open(dir);
  ck.check_shape("model.embed_tokens.weight", {512, 64});
  ck.check_shape("model.layers.0.self_attn.k_proj.weight", {32, 64});
  at::Tensor k = ck.load("model.layers.0.self_attn.k_proj.weight", at::kBFloat16);
  EXPECT_EQ(k.scalar_type(), at::kBFloat16);
  EXPECT_EQ(k.sizes(), (at::IntArrayRef{32, 64}));
  EXPECT_EQ(ck.bytes_read(), 32u * 64 * 4);
}

}  // namespace
}  // namespace lminf
