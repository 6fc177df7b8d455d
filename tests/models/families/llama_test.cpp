// The Llama family forward against an independent float64 reference, on tiny random checkpoints
// (GQA and not, tied and untied, single file and sharded, biases, head_dim override), plus KV-cache
// decoding, batches, bfloat16, and conformance with the real stories260k model.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "attention/registry.h"
#include "framework/io/checkpoint.h"
#include "framework/core/error.h"
#include "models/model_config_json.h"
#include "models/causal_lm.h"
#include "models/generate.h"
#include "models/random_checkpoint.h"
#include "support/reference_llama.h"
#include "support/test_support.h"

namespace lminf {
namespace {
using lminf::testing::TempDir;

std::vector<int64_t> random_ids(int64_t n, int64_t vocab, uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  at::Tensor t = at::randint(vocab, {n}, gen, at::kLong);
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + n);
}

at::Tensor model_nll(CausalLM& m, const AttentionVariant& attn, const std::vector<int64_t>& ids) {
  at::Tensor x = at::tensor(ids, at::kLong).unsqueeze(0);
  ForwardContext ctx{&attn, nullptr};
  const int64_t T = x.size(1);
  at::Tensor hidden = m.forward(x.narrow(1, 0, T - 1), nullptr, ctx);
  return m.token_nll(hidden, x.narrow(1, 1, T - 1)).squeeze(0);
}

struct RandomCase {
  std::string label;
  int64_t n_head, n_head_kv, head_dim;
  bool tied, bias;
  int shards;
  at::ScalarType storage;
};

class RandomLlama : public ::testing::TestWithParam<RandomCase> {};

TEST_P(RandomLlama, NllMatchesFloat64Reference) {
  const RandomCase rc = GetParam();
  ModelConfig c = llama_preset("tiny");
  c.n_head = rc.n_head;
  c.n_head_kv = rc.n_head_kv;
  c.head_dim = rc.head_dim;
  c.tie_word_embeddings = rc.tied;
  c.attention_bias = rc.bias;
  c.mlp_bias = rc.bias;
  c.vocab_size = 97;  // odd vocabulary
  TempDir dir;
  auto stored = write_random_llama(dir.path(), c, 42, rc.shards, rc.storage);
  ModelConfig read = load_model_config(dir.path());
  EXPECT_EQ(read.n_head_kv, rc.n_head_kv);
  EXPECT_EQ(read.head_dim, rc.head_dim);
  auto model = load_model(dir.path(), read, LoadOptions{});
  AttentionSpec spec;
  spec.block_size = 7;  // several tiles even for short sequences
  spec.key_block_size = 11;
  auto attn = make_attention(spec);
  auto ids = random_ids(53, c.vocab_size, 3);
  at::Tensor got = model_nll(*model, *attn, ids);
  at::Tensor want = lminf::testing::reference_llama_nll(lminf::testing::to_map(stored), read, ids);
  ASSERT_EQ(got.size(0), want.size(0));
  EXPECT_LT((got.to(at::kDouble) - want).abs().max().item<double>(), 2e-4) << rc.label;
}

INSTANTIATE_TEST_SUITE_P(Configs, RandomLlama,
                         ::testing::Values(RandomCase{"gqa_tied_single", 4, 2, 16, true, false, 1, at::kFloat},
                                           RandomCase{"mha_untied_sharded", 4, 4, 16, false, false, 3, at::kFloat},
                                           RandomCase{"mqa_bias_headdim", 6, 1, 8, false, true, 2, at::kFloat},
                                           RandomCase{"bf16_storage", 4, 2, 16, true, false, 1, at::kBFloat16},
                                           RandomCase{"f16_storage", 8, 4, 12, false, false, 1, at::kHalf}),
                         [](const auto& info) { return info.param.label; });

class TinyModel : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = llama_preset("tiny");
    stored_ = write_random_llama(dir_.path(), config_, 5, 1, at::kFloat);
    config_ = load_model_config(dir_.path());
    model_ = load_model(dir_.path(), config_, LoadOptions{});
    AttentionSpec spec;
    spec.block_size = 8;
    spec.key_block_size = 16;
    attn_ = make_attention(spec);
  }
  TempDir dir_;
  ModelConfig config_;
  NamedTensors stored_;
  std::unique_ptr<CausalLM> model_;
  std::unique_ptr<AttentionVariant> attn_;
};

TEST_F(TinyModel, IncrementalDecodingEqualsFullForward) {
  auto ids = random_ids(41, config_.vocab_size, 11);
  at::Tensor x = at::tensor(ids, at::kLong).unsqueeze(0);
  ForwardContext ctx{attn_.get(), nullptr};
  at::Tensor full = model_->logits(model_->forward(x, nullptr, ctx));
  KVCache cache = model_->new_cache(*attn_);
  std::vector<at::Tensor> parts;
  int64_t pos = 0;
  for (int64_t chunk : {5, 1, 1, 9, 1, 13, 11}) {
    parts.push_back(model_->logits(model_->forward(x.narrow(1, pos, chunk), &cache, ctx)));
    pos += chunk;
  }
  ASSERT_EQ(pos, 41);
  EXPECT_EQ(cache.size(), 41);
  EXPECT_EQ(cache.n_fed(), 41);
  at::Tensor inc = at::cat(parts, 1);
  EXPECT_LT((inc - full).abs().max().item<double>(), 1e-4);
}

TEST_F(TinyModel, BatchRowsEqualSingleSequences) {
  auto a = random_ids(30, config_.vocab_size, 1), b = random_ids(30, config_.vocab_size, 2);
  at::Tensor batch = at::stack({at::tensor(a, at::kLong), at::tensor(b, at::kLong)});
  ForwardContext ctx{attn_.get(), nullptr};
  at::Tensor hb = model_->forward(batch.narrow(1, 0, 29), nullptr, ctx);
  at::Tensor nb = model_->token_nll(hb, batch.narrow(1, 1, 29));
  EXPECT_LT((nb[0] - model_nll(*model_, *attn_, a)).abs().max().item<double>(), 1e-5);
  EXPECT_LT((nb[1] - model_nll(*model_, *attn_, b)).abs().max().item<double>(), 1e-5);
}

TEST_F(TinyModel, BFloat16ComputeCloseToFloat32) {
  LoadOptions o;
  o.dtype = at::kBFloat16;
  auto bf = load_model(dir_.path(), config_, o);
  EXPECT_EQ(bf->dtype(), at::kBFloat16);
  EXPECT_EQ(bf->weight_bytes() * 2, model_->weight_bytes());
  auto ids = random_ids(64, config_.vocab_size, 9);
  at::Tensor n32 = model_nll(*model_, *attn_, ids), n16 = model_nll(*bf, *attn_, ids);
  EXPECT_LT((n32 - n16).abs().mean().item<double>(), 0.05);
  EXPECT_GT((n32 - n16).abs().max().item<double>(), 0.0);  // it really ran in bfloat16
}

TEST_F(TinyModel, LinearRopeScalingMatchesReference) {
  ModelConfig c = config_;
  c.rope_scaling.type = "linear";
  c.rope_scaling.factor = 4.0;
  TempDir d2;
  auto stored = write_random_llama(d2.path(), c, 5, 1, at::kFloat);
  auto m = load_model(d2.path(), load_model_config(d2.path()), LoadOptions{});
  auto ids = random_ids(40, c.vocab_size, 4);
  at::Tensor got = model_nll(*m, *attn_, ids);
  at::Tensor want = lminf::testing::reference_llama_nll(lminf::testing::to_map(stored), c, ids);
  EXPECT_LT((got.to(at::kDouble) - want).abs().max().item<double>(), 2e-4);
  at::Tensor plain = model_nll(*model_, *attn_, ids);
  EXPECT_GT((got - plain).abs().max().item<double>(), 1e-3);  // the scaling changed something
}

TEST_F(TinyModel, GreedyGenerationIsArgmaxOfFullForward) {
  GenerateOptions g;
  g.max_new_tokens = 12;
  std::vector<int64_t> prompt = {1, 17, 33};
  auto out = generate(*model_, *attn_, prompt, g);
  ASSERT_EQ(out.size(), 12u);
  // Re-derive each token with a cache-free forward over the growing sequence.
  std::vector<int64_t> seq = prompt;
  ForwardContext ctx{attn_.get(), nullptr};
  for (int64_t tok : out) {
    at::Tensor x = at::tensor(seq, at::kLong).unsqueeze(0);
    at::Tensor lg = model_->logits(model_->forward(x, nullptr, ctx));
    EXPECT_EQ(lg[0][static_cast<int64_t>(seq.size()) - 1].argmax().item<int64_t>(), tok);
    seq.push_back(tok);
  }
}

TEST_F(TinyModel, SamplingIsSeededAndRespectsTopK) {
  GenerateOptions g;
  g.max_new_tokens = 20;
  g.do_sample = true;
  g.seed = 77;
  g.top_k = 1;  // top-k 1 is greedy
  GenerateOptions greedy;
  greedy.max_new_tokens = 20;
  EXPECT_EQ(generate(*model_, *attn_, {1}, g), generate(*model_, *attn_, {1}, greedy));
  g.top_k = 0;
  g.top_p = 0.9;
  auto a = generate(*model_, *attn_, {1}, g), b = generate(*model_, *attn_, {1}, g);
  EXPECT_EQ(a, b);
  g.seed = 78;
  EXPECT_NE(a, generate(*model_, *attn_, {1}, g));
}

TEST(LoadModel, ShapeMismatchNamesTensorAndConfig) {
  TempDir dir;
  ModelConfig c = llama_preset("tiny");
  write_random_llama(dir.path(), c, 1);
  ModelConfig wrong = c;
  wrong.intermediate_size = 128;
  try {
    load_model(dir.path(), wrong, LoadOptions{});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mlp.gate_proj.weight"), std::string::npos) << e.what();
  }
}

// ---- conformance with a real pretrained model (../shared/fixtures/stories260k) ----

std::vector<std::vector<int64_t>> read_id_lines(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::vector<std::vector<int64_t>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::vector<int64_t> row;
    int64_t v;
    while (ls >> v) row.push_back(v);
    rows.push_back(row);
  }
  return rows;
}

TEST(Stories260k, GreedyFromBosMatchesLlama2c) {
  auto dir = lminf::testing::shared_fixture("stories260k");
  if (dir.empty()) GTEST_SKIP() << "../shared/fixtures/stories260k absent";
  auto expected = read_id_lines(dir / "greedy_from_bos.ids").at(0);
  ASSERT_EQ(expected.size(), 200u);
  auto model = load_model(dir, load_model_config(dir), LoadOptions{});
  auto attn = make_attention(AttentionSpec{});
  GenerateOptions g;
  g.max_new_tokens = 200;
  EXPECT_EQ(generate(*model, *attn, {1}, g), expected);
}

TEST(Stories260k, StoryNllWithin1e4Relative) {
  auto dir = lminf::testing::shared_fixture("stories260k");
  if (dir.empty()) GTEST_SKIP() << "../shared/fixtures/stories260k absent";
  auto stories = read_id_lines(dir / "stories.ids");
  std::ifstream tsv(dir / "stories_nll.tsv");
  std::string header;
  std::getline(tsv, header);
  auto model = load_model(dir, load_model_config(dir), LoadOptions{});
  auto attn = make_attention(AttentionSpec{});
  int checked = 0;
  double worst = 0;
  int64_t index, n_tokens;
  double sum_nll, mean_nll;
  while (tsv >> index >> n_tokens >> sum_nll >> mean_nll) {
    std::vector<int64_t> ids = {1};
    const auto& story = stories.at(static_cast<size_t>(index));
    ids.insert(ids.end(), story.begin(), story.end());
    ASSERT_EQ(static_cast<int64_t>(story.size()), n_tokens);
    const double got = model_nll(*model, *attn, ids).to(at::kDouble).sum().item<double>();
    const double rel = std::abs(got - sum_nll) / std::abs(sum_nll);
    worst = std::max(worst, rel);
    EXPECT_LT(rel, 1e-4) << "story " << index << ": " << got << " vs " << sum_nll;
    ++checked;
  }
  EXPECT_EQ(checked, 150);
  std::cout << "stories260k: worst relative NLL error " << worst << " over " << checked << " stories\n";
}

}  // namespace
}  // namespace lminf
