// The variants inside a model: one long prefill equals feeding the same tokens in chunks (and token
// by token) through the model's KV cache; bounded-cache variants keep the cache flat however long the
// stream; with a window wider than the sequence every variant is vanilla.
#include <gtest/gtest.h>

#include "attention/registry.h"
#include "framework/config/spec.h"
#include "models/model_config_json.h"
#include "models/causal_lm.h"
#include "models/random_checkpoint.h"
#include "support/test_support.h"

namespace lminf {
namespace {

class VariantModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new lminf::testing::TempDir();
    ModelConfig c = llama_preset("tiny");
    write_random_llama(dir_->path() / "model", c, 11);
    config_ = new ModelConfig(load_model_config(dir_->path() / "model"));
    model_ = load_model(dir_->path() / "model", *config_, LoadOptions{}).release();
  }
  static void TearDownTestSuite() {
    delete model_;
    delete config_;
    delete dir_;
  }
  static AttentionSpec spec(const std::string& yaml) {
    AttentionSpec s;
    read_spec(YAML::Load(yaml), s, SpecSource{}, "attention");
    return s;
  }
  static at::Tensor ids(int64_t B, int64_t T) {
    at::manual_seed(B * 1000 + T);
    return at::randint(3, config_->vocab_size, {B, T}, at::kLong);
  }
  // Hidden states of the whole sequence fed in chunks of `chunk` through the variant's cache.
  static at::Tensor chunked(const AttentionVariant& attn, const at::Tensor& x, int64_t chunk, int64_t* largest_cache,
                            int64_t* largest_capacity) {
    KVCache cache = model_->new_cache(attn);
    std::vector<at::Tensor> hs;
    *largest_cache = 0;
    *largest_capacity = 0;
    for (int64_t s = 0; s < x.size(1); s += chunk) {
      const int64_t n = std::min(chunk, x.size(1) - s);
      hs.push_back(model_->forward(x.narrow(1, s, n), &cache, ForwardContext{&attn, nullptr}));
      *largest_cache = std::max(*largest_cache, cache.size());
      *largest_capacity = std::max(*largest_capacity, cache.layer(0).capacity());
    }
    EXPECT_EQ(cache.n_fed(), x.size(1));
    return at::cat(hs, 1);
  }

  static lminf::testing::TempDir* dir_;
  static ModelConfig* config_;
  static CausalLM* model_;
};
lminf::testing::TempDir* VariantModel::dir_ = nullptr;
ModelConfig* VariantModel::config_ = nullptr;
CausalLM* VariantModel::model_ = nullptr;

TEST_F(VariantModel, ChunkedStreamingEqualsOnePrefill) {
  struct Case {
    std::string yaml;
    int64_t bound;  // cache entries kept between calls; -1: everything
  };
  const std::vector<Case> cases = {
      {"{variant: lambda, local_branch: 12, global_branch: 3, block_size: 7, key_block_size: 5}", 15},
      {"{variant: lambda, local_branch: 9, global_branch: 2, limit_distance: 6}", 11},
      {"{variant: streaming, start_size: 3, recent_size: 10, block_size: 8}", 12},
      {"{variant: distance_limit, limit_distance: 8, triangle_offset: 0.3, local_branch: 8, global_branch: 2}", -1},
      {"{variant: vanilla, block_size: 16}", -1},
  };
  at::Tensor x = ids(2, 45);
  for (const auto& c : cases) {
    auto attn = make_attention(spec(c.yaml));
    at::Tensor full = model_->forward(x, nullptr, ForwardContext{attn.get(), nullptr});
    for (int64_t chunk : {1, 7, 20}) {
      int64_t largest = 0, capacity = 0;
      at::Tensor got = chunked(*attn, x, chunk, &largest, &capacity);
      EXPECT_LT((got - full).abs().max().item<float>(), 2e-4) << c.yaml << " chunk " << chunk;
      if (c.bound >= 0) {
        EXPECT_LE(largest, c.bound) << c.yaml;
        // The buffers never hold more than the kept entries plus one chunk (plus the minimum allocation).
        EXPECT_LE(capacity, std::max<int64_t>(64, 2 * (c.bound + chunk))) << c.yaml;
      }
    }
  }
}

TEST_F(VariantModel, BoundedCacheStaysFlatOverALongStream) {
  auto attn = make_attention(spec("{variant: lambda, local_branch: 16, global_branch: 4}"));
  KVCache cache = model_->new_cache(*attn);
  at::Tensor x = ids(1, 600);
  int64_t bytes_early = 0;
  for (int64_t s = 0; s < 600; s += 8) {
    model_->forward(x.narrow(1, s, 8), &cache, ForwardContext{attn.get(), nullptr});
    if (s == 96) bytes_early = cache.bytes();
    EXPECT_LE(cache.size(), 20);
  }
  EXPECT_EQ(cache.bytes(), bytes_early);
  EXPECT_EQ(cache.n_fed(), 600);
}

TEST_F(VariantModel, WideWindowsAreVanilla) {
  at::Tensor x = ids(2, 30);
  auto vanilla = make_attention(AttentionSpec{});
  at::Tensor want = model_->forward(x, nullptr, ForwardContext{vanilla.get(), nullptr});
  for (const std::string y :
       {"{variant: lambda, local_branch: 30}", "{variant: streaming, recent_size: 30}",
        "{variant: distance_limit, limit_distance: 30}", "{variant: topk, local_branch: 30, top_k_from_layer: 0}"}) {
    auto attn = make_attention(spec(y));
    at::Tensor got = model_->forward(x, nullptr, ForwardContext{attn.get(), nullptr});
    EXPECT_LT((got - want).abs().max().item<float>(), 1e-5) << y;
  }
}

TEST_F(VariantModel, TopKChangesOnlyTheLastPosition) {
  at::Tensor x = ids(1, 40);
  auto lambda = make_attention(spec("{variant: lambda, local_branch: 8, global_branch: 2}"));
  auto topk = make_attention(spec("{variant: topk, local_branch: 8, global_branch: 2, top_k: 3, top_k_from_layer: 0}"));
  at::Tensor a = model_->forward(x, nullptr, ForwardContext{lambda.get(), nullptr});
  at::Tensor b = model_->forward(x, nullptr, ForwardContext{topk.get(), nullptr});
  EXPECT_LT((a.narrow(1, 0, 39) - b.narrow(1, 0, 39)).abs().max().item<float>(), 1e-6);
  EXPECT_GT((a.narrow(1, 39, 1) - b.narrow(1, 39, 1)).abs().max().item<float>(), 1e-6);
}

}  // namespace
}  // namespace lminf
