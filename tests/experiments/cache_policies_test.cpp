// The KV-cache policies (attention.cache) through the tasks from YAML: perplexity fed in chunks
// (equal to one call while nothing is evicted; a chunk_size is required with a policy),
// streaming_perplexity with flat cache bytes, passkey (prefill then decode), and the policy's
// problems reported by the loader before any weight is read.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "attention/registry.h"
#include "experiments/run/run_experiment.h"
#include "models/causal_lm.h"
#include "models/model_config_json.h"
#include "models/random_checkpoint.h"
#include "support/test_support.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using lminf::testing::error_of;
using lminf::testing::read_text;
using lminf::testing::TempDir;
using lminf::testing::write_text;

class CachePoliciesFromYaml : public ::testing::Test {
 protected:
  void SetUp() override {
    write_random_llama(dir_ / "model", llama_preset("tiny"), 5);
    std::string data;
    for (int s = 0; s < 3; ++s) {
      for (int i = 0; i < 50 + 9 * s; ++i) data += (i ? " " : "") + std::to_string(3 + (i * 37 + s * 11) % 250);
      data += "\n";
    }
    write_text(dir_ / "data.ids", data);
  }
  std::string yaml(const std::string& attention, const std::string& task, const std::string& out) const {
    return "name: c\nmodel: {path: " + (dir_ / "model").string() + "}\nattention: " + attention +
           "\ndata: {path: " + (dir_ / "data.ids").string() + "}\ntask: " + task + "\noutput: {dir: " +
           (dir_ / out).string() + "}\n";
  }
  nlohmann::json run(const std::string& attention, const std::string& task, const std::string& out) {
    write_text(dir_ / (out + ".yaml"), yaml(attention, task, out));
    LocalCommunicator world;
    auto exp = load_experiment((dir_ / (out + ".yaml")).string(), {}, 1);
    run_experiment(exp, world);
    return nlohmann::json::parse(read_text(dir_ / out / "results.json"));
  }
  std::string load_error(const std::string& attention, const std::string& task) {
    write_text(dir_ / "bad.yaml", yaml(attention, task, "bad"));
    return error_of([&] { load_experiment((dir_ / "bad.yaml").string(), {}, 1); });
  }
  TempDir dir_;
};

const char* kPerplexity = "{type: perplexity, max_length: 64, bucket: 16, batch_size: 2, chunk_size: 5}";

TEST_F(CachePoliciesFromYaml, PerplexityInChunksEqualsOneCallUntilSomethingIsEvicted) {
  const double whole = run("{variant: vanilla}", "{type: perplexity, max_length: 64, bucket: 16, batch_size: 2}",
                           "whole")["mean_nll"];
  // A capacity past every sequence: chunks through the H2O cache evict nothing.
  const double kept = run("{variant: vanilla, cache: {policy: h2o, hh_size: 40, recent_size: 40}}", kPerplexity,
                          "kept")["mean_nll"];
  EXPECT_NEAR(kept, whole, 1e-5 * std::abs(whole));
  // Small caches evict, and change the numbers.
  for (const std::string a : {"{variant: vanilla, cache: {policy: h2o, hh_size: 4, recent_size: 6}}",
                              "{variant: vanilla, cache: {policy: snapkv, window_size: 4, max_capacity_prompt: 10}}",
                              "{variant: streaming, start_size: 2, recent_size: 12, cache: {policy: h2o, hh_size: 3, "
                              "recent_size: 5}}"}) {
    const double nll = run(a, kPerplexity, "evict" + std::to_string(a.size()))["mean_nll"];
    EXPECT_TRUE(std::isfinite(nll)) << a;
    EXPECT_GT(std::abs(nll - whole), 1e-6) << a << ": nothing was evicted";
  }
}

TEST_F(CachePoliciesFromYaml, ProblemsBeforeWeights) {
  std::string e = load_error("{variant: vanilla, cache: {policy: h2o}}", "{type: perplexity, max_length: 64}");
  EXPECT_NE(e.find("set task.chunk_size"), std::string::npos) << e;
  e = load_error("{variant: topk, top_k_from_layer: 0, cache: {policy: h2o}}", kPerplexity);
  EXPECT_NE(e.find("does not report"), std::string::npos) << e;
  e = load_error("{variant: vanilla, cache: {policy: snapkv, window_size: 8, max_capacity_prompt: 16}}",
                 "{type: streaming_perplexity, chunk_size: 4}");
  EXPECT_NE(e.find("keeps every token in its KV cache at task.chunk_size 4"), std::string::npos) << e;
  e = load_error("{variant: vanilla, cache: {policy: h2o, window_size: 3}}", kPerplexity);
  EXPECT_NE(e.find("attention.cache.window_size is not read by attention.cache.policy: h2o"), std::string::npos) << e;
}

TEST_F(CachePoliciesFromYaml, StreamingPerplexityRunsBoundedWithEachPolicy) {
  for (const std::string a : {"{variant: vanilla, cache: {policy: h2o, hh_size: 4, recent_size: 8}}",
                              "{variant: vanilla, cache: {policy: snapkv, window_size: 4, max_capacity_prompt: 12}}",
                              "{variant: lambda, local_branch: 16, global_branch: 2, cache: {policy: snapkv, "
                              "window_size: 3, max_capacity_prompt: 10}}"}) {
    const nlohmann::json r = run(a, "{type: streaming_perplexity, chunk_size: 6}", "s" + std::to_string(a.size()));
    EXPECT_TRUE(std::isfinite(r["mean_nll"].get<double>())) << a;
    // At most the capacity plus the stream's last chunk, which may be too short to compress.
    EXPECT_LE(r["kv_cache_entries"].get<int64_t>(), 2 + 12 + 6) << a;
  }
}

// The cache's bytes through a long stream of chunks on a model: flat once the buffers hold the
// capacity plus one chunk.
TEST_F(CachePoliciesFromYaml, CacheBytesStayFlatThroughAStream) {
  ModelConfig c = load_model_config(dir_ / "model");
  auto model = load_model(dir_ / "model", c, LoadOptions{});
  for (const std::string a : {"{variant: vanilla, cache: {policy: h2o, hh_size: 5, recent_size: 7}}",
                              "{variant: streaming, start_size: 2, recent_size: 14, cache: {policy: snapkv, "
                              "window_size: 3, max_capacity_prompt: 9}}"}) {
    auto variant = make_attention(AttentionSpec::parse(a));
    KVCache cache = model->new_cache(*variant);
    ForwardContext fctx{variant.get(), nullptr};
    int64_t warm = 0;
    for (int64_t call = 0; call < 40; ++call) {
      model->forward(at::randint(3, 200, {2, 5}, at::kLong), &cache, fctx);
      EXPECT_LE(cache.size(), variant->cache_policy()->max_size_for_chunks(5)) << a;
      if (call == 5) warm = cache.bytes();
      if (call > 5) ASSERT_EQ(cache.bytes(), warm) << a << " call " << call;
    }
  }
}

TEST(CachePolicyPasskey, PrefillThenDecodeFromYaml) {
  TempDir d;
  const fs::path model = lminf::testing::source_dir() / "embedded" / "lminf-info-1m";
  write_text(d / "p.yaml", "name: pk\nseed: 1\nmodel: {path: " + model.string() + "}\n"
                           "attention: {variant: vanilla, cache: {policy: snapkv, window_size: 8, "
                           "max_capacity_prompt: 64}}\n"
                           "task: {type: passkey, lengths: [128], depths: [0.5], samples: 1, max_new_tokens: 4}\n"
                           "output: {dir: " + (d / "out").string() + "}\n");
  LocalCommunicator world;
  auto exp = load_experiment((d / "p.yaml").string(), {}, 1);
  run_experiment(exp, world);
  const nlohmann::json r = nlohmann::json::parse(read_text(d / "out" / "results.json"));
  EXPECT_EQ(r["samples"].get<int64_t>(), 1) << r.dump();
}

}  // namespace
}  // namespace lminf
