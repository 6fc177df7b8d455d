// Factor dumps end to end: a tiny random model run from YAML (task attention_dump, and a perplexity
// run carrying a dump section) writes an lminf.factors file whose rows equal what the model computes
// on each sequence alone; partial dumps are flushed and readable; bad dump sections are refused.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "attention/registry.h"
#include "analysis/factors/factor_dump.h"
#include "experiments/run/run_experiment.h"
#include "framework/io/h5_file.h"
#include "models/model_config_json.h"
#include "models/random_checkpoint.h"
#include "support/test_support.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using lminf::testing::read_text;
using lminf::testing::TempDir;
using lminf::testing::write_text;

// Collects everything a forward call reports: full logits [1, H, T, T] and hidden states per layer.
class Collector : public Observer {
 public:
  explicit Collector(int64_t H, int64_t T) : H_(H), T_(T) {}
  std::map<int64_t, at::Tensor> logits, hidden;
  bool wants(Site s, int64_t) const override { return s == Site::kAttnLogits || s == Site::kHidden; }
  void observe(const Observation& o) override {
    if (o.site == Site::kHidden) {
      hidden[o.layer] = o.data[0].clone();
      return;
    }
    auto it = logits.find(o.layer);
    if (it == logits.end()) it = logits.emplace(o.layer, at::full({H_, T_, T_}, -INFINITY)).first;
    it->second.narrow(1, o.q_start, o.data.size(2)).narrow(2, o.k_start, o.data.size(3)).copy_(o.data[0]);
  }

 private:
  int64_t H_, T_;
};

class DumpRun : public ::testing::Test {
 protected:
  void SetUp() override {
    write_random_llama(dir_ / "model", llama_preset("tiny"), 5);
    // Three sequences; with batch_size 2 the second batch holds one, the first pads the shorter one.
    write_text(dir_ / "data.ids", line(29, 3) + "\n" + line(16, 7) + "\n" + line(50, 11) + "\n");
  }
  static std::string line(int n, int seed) {
    std::string s;
    for (int i = 0; i < n; ++i) s += (i ? " " : "") + std::to_string(3 + (i * 37 + seed * 11) % 250);
    return s;
  }
  std::string yaml(const std::string& task, const std::string& dump) const {
    return "name: dump-test\n"
           "model: {path: " + (dir_ / "model").string() + "}\n"
           "attention: {variant: vanilla, block_size: 7, key_block_size: 11}\n"
           "data: {format: ids, path: " + (dir_ / "data.ids").string() + ", prepend_bos: true}\n"
           "task: " + task + "\n"
           "output: {dir: " + (dir_ / "out").string() + "}\n" + dump;
  }
  void run(const std::string& text, const std::vector<std::string>& overrides = {}) {
    write_text(dir_ / "exp.yaml", text);
    LocalCommunicator world;
    auto exp = load_experiment((dir_ / "exp.yaml").string(), overrides, 1);
    run_experiment(exp, world);
  }
  TempDir dir_;
};

TEST_F(DumpRun, AttentionDumpRowsEqualEachSequenceAlone) {
  run(yaml("{type: attention_dump, max_length: 40, batch_size: 2, nll: true}",
           "dump: {factors: [logits, entropy, features], query_stride: 16, distance_bucket: 8,\n"
           "       feature_first: 3, feature_stride: 10, hidden_states: [1, 2], heads: [3, 0]}\n"));
  const fs::path file = dir_ / "out" / "factors.h5";
  ASSERT_TRUE(fs::exists(file));
  H5Reader h5(file);
  // Schema and provenance.
  EXPECT_EQ(h5.attr_string("/", "schema"), "lminf.factors");
  EXPECT_EQ(h5.attr_int("/", "schema_version"), 1);
  for (const char* a : {"config", "model_path", "model_type", "dtype", "variant", "git_revision", "lminf_version",
                        "created", "factors", "dump"})
    EXPECT_TRUE(h5.has_attr("/", a)) << a;
  for (const char* a : {"world_size", "tensor_parallel", "max_length", "n_layer", "n_head", "n_head_kv", "head_dim",
                        "hidden_size", "max_position_embeddings"})
    EXPECT_TRUE(h5.has_attr("/", a)) << a;
  EXPECT_EQ(h5.attr_int("/", "complete"), 1);
  EXPECT_EQ(h5.attr_int("/", "n_sequences"), 3);
  EXPECT_EQ(h5.attr_int("/", "max_length"), 40);
  EXPECT_EQ(h5.attr_string("/", "variant"), "vanilla");
  EXPECT_NE(h5.attr_string("/", "config").find("attention_dump"), std::string::npos);
  EXPECT_EQ(h5.attr_ints("factor1", "heads"), (std::vector<int64_t>{3, 0}));
  EXPECT_TRUE(at::equal(h5.read("sequences/index"), at::tensor({0, 1, 2}, at::kLong)));
  EXPECT_TRUE(at::equal(h5.read("sequences/length"), at::tensor({30, 17, 40}, at::kLong)));  // BOS + tokens, cut at 40
  auto results = nlohmann::json::parse(read_text(dir_ / "out" / "results.json"));
  EXPECT_EQ(results["sequences_recorded"], 3);

  // Each sequence alone through the model, collecting the dense logits and hidden states.
  ModelConfig c = load_model_config(dir_ / "model");
  auto model = load_model(dir_ / "model", c, LoadOptions{});
  auto attn = make_attention(AttentionSpec{});
  const std::vector<int> lens{29, 16, 50}, seeds{3, 7, 11};
  const std::vector<int64_t> heads{3, 0};
  H5Reader nll_file(dir_ / "out" / "token_nll.h5");
  EXPECT_EQ(nll_file.attr_string("/", "schema"), "lminf.token_nll");
  EXPECT_TRUE(at::equal(nll_file.read("lengths"), at::tensor({29, 16, 39}, at::kLong)));
  const at::Tensor nll = nll_file.read("token_nll");  // [3, 39]
  const at::Tensor entropy = h5.read("factor2/layer_01/entropy");        // [3, 2, 40]
  const at::Tensor visible = h5.read("factor2/layer_01/visible_keys");
  const at::Tensor qlog = h5.read("factor1/layer_00/query_logits");      // [rows, 2, 40]
  const at::Tensor qseq = h5.read("factor1/query_sequence"), qpos = h5.read("factor1/query_position");
  const at::Tensor bmax = h5.read("factor1/layer_01/bucket_max");        // [3, 2, 5]
  const at::Tensor spos = h5.read("factor3/sample_position"), sseq = h5.read("factor3/sample_sequence");
  const at::Tensor hs2 = h5.read("factor3/hidden/hs_02");               // after block 1
  ASSERT_EQ(entropy.sizes(), (std::vector<int64_t>{3, 2, 40}));
  ASSERT_EQ(bmax.sizes(), (std::vector<int64_t>{3, 2, 5}));
  EXPECT_TRUE(at::equal(h5.read("factor1/distance_edges"), at::tensor({0, 8, 16, 24, 32, 40}, at::kLong)));
  EXPECT_EQ(h5.shape("factor3/query/layer_00"), (std::vector<int64_t>{spos.size(0), 2, c.head_dim}));
  EXPECT_EQ(h5.shape("factor3/key/layer_00"), (std::vector<int64_t>{spos.size(0), 2, c.head_dim}));  // kv heads 0, 1
  EXPECT_EQ(h5.shape("factor1/layer_00/run_max"), (std::vector<int64_t>{2, 5}));

  for (int64_t s = 0; s < 3; ++s) {
    std::vector<int64_t> ids{1};
    std::istringstream in(line(lens[static_cast<size_t>(s)], seeds[static_cast<size_t>(s)]));
    for (int64_t x; in >> x;) ids.push_back(x);
    if (ids.size() > 40) ids.resize(40);
    const int64_t T = static_cast<int64_t>(ids.size());
    auto col = std::make_shared<Collector>(c.n_head, T);
    ObserverSet set;
    set.add(col);
    at::Tensor x = at::tensor(ids, at::kLong).unsqueeze(0);
    at::Tensor h = model->forward(x, nullptr, ForwardContext{attn.get(), &set});
    // task.nll: token_nll.h5 holds this sequence's NLL, as task perplexity would write it.
    at::Tensor want_nll = model->token_nll(h.narrow(1, 0, T - 1), x.narrow(1, 1, T - 1))[0];
    EXPECT_LT((nll[s].narrow(0, 0, T - 1) - want_nll).abs().max().item<float>(), 1e-5);
    if (T - 1 < nll.size(1)) EXPECT_TRUE(at::isnan(nll[s].narrow(0, T - 1, nll.size(1) - T + 1)).all().item<bool>());

    // Factor 2, layer 1: dense entropy of the collected logits.
    at::Tensor L = col->logits.at(1).to(at::kDouble);  // [H, T, T]
    at::Tensor logp = at::log_softmax(L, -1);
    at::Tensor want = -at::where(at::isfinite(L), logp.exp() * logp, at::zeros_like(L)).sum(-1);  // [H, T]
    for (int64_t slot = 0; slot < 2; ++slot) {
      at::Tensor got = entropy[s][slot];
      EXPECT_LT((got.narrow(0, 0, T).to(at::kDouble) - want[heads[slot]]).abs().max().item<double>(), 1e-4) << s;
      if (T < 40) EXPECT_TRUE(at::isnan(got.narrow(0, T, 40 - T)).all().item<bool>());
      EXPECT_TRUE(at::equal(visible[s][slot].narrow(0, 0, T).to(at::kLong), at::arange(1, T + 1, at::kLong)));
      // Factor 1 buckets, layer 1: bucket 0 holds distances 0..7.
      at::Tensor L1 = L[heads[slot]];
      double m = -INFINITY;
      for (int64_t i = 0; i < T; ++i)
        for (int64_t j = std::max<int64_t>(0, i - 7); j <= i; ++j) m = std::max(m, L1[i][j].item<double>());
      EXPECT_NEAR(bmax[s][slot][0].item<float>(), m, 1e-4);
    }
    // Factor 1 chosen queries, layer 0: positions 15, 31 (below T - 1) and T - 1.
    at::Tensor L0 = col->logits.at(0).to(at::kDouble);
    std::vector<int64_t> want_pos;
    for (int64_t p = 15; p < T - 1; p += 16) want_pos.push_back(p);
    want_pos.push_back(T - 1);
    size_t k = 0;
    for (int64_t r = 0; r < qseq.size(0); ++r) {
      if (qseq[r].item<int64_t>() != s) continue;
      const int64_t p = qpos[r].item<int64_t>();
      ASSERT_LT(k, want_pos.size());
      EXPECT_EQ(p, want_pos[k++]);
      for (int64_t slot = 0; slot < 2; ++slot)
        EXPECT_LT((qlog[r][slot].narrow(0, 0, p + 1).to(at::kDouble) - L0[heads[slot]][p].narrow(0, 0, p + 1))
                      .abs().max().item<double>(), 1e-4);
    }
    EXPECT_EQ(k, want_pos.size());
    // Factor 3: hidden_states[2] is the residual after block 1.
    for (int64_t r = 0; r < sseq.size(0); ++r) {
      if (sseq[r].item<int64_t>() != s) continue;
      const int64_t p = spos[r].item<int64_t>();
      EXPECT_LT((hs2[r] - col->hidden.at(1)[p]).abs().max().item<float>(), 1e-5) << s << " " << p;
    }
  }
}

TEST_F(DumpRun, PerplexityRunCarriesADump) {
  run(yaml("{type: perplexity, max_length: 40, bucket: 8, batch_size: 3}",
           "dump: {factors: [entropy], file: ent.h5, layers: [0]}\n"));
  ASSERT_TRUE(fs::exists(dir_ / "out" / "token_nll.h5"));
  H5Reader h5(dir_ / "out" / "ent.h5");
  EXPECT_EQ(h5.attr_string("/", "schema"), "lminf.factors");
  // The perplexity task feeds tokens 0..n-2 of each sequence: lengths equal the NLL lengths.
  H5Reader nll(dir_ / "out" / "token_nll.h5");
  EXPECT_TRUE(at::equal(h5.read("sequences/length"), nll.read("lengths")));
  EXPECT_EQ(h5.list("factor2"), (std::vector<std::string>{"layer_00"}));
  EXPECT_FALSE(h5.exists("factor1"));
  EXPECT_EQ(h5.shape("factor2/layer_00/entropy"), (std::vector<int64_t>{3, 4, 39}));
  // A second run refuses to replace the dump.
  try {
    run(yaml("{type: perplexity, max_length: 40}", "dump: {factors: [entropy], file: ent.h5}\n"));
    FAIL() << "expected an overwrite refusal";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("output.overwrite"), std::string::npos) << e.what();
  }
}

TEST_F(DumpRun, PartialDumpIsFlushedAndReadable) {
  ModelConfig c = load_model_config(dir_ / "model");
  auto model = load_model(dir_ / "model", c, LoadOptions{});
  auto attn = make_attention(AttentionSpec{});
  FactorDumpOptions o;
  o.spec.factors = {"entropy", "logits"};
  o.spec.flush_every = 1;
  o.model = c;
  o.max_length = 12;
  o.provenance = {{"name", "partial"}, {"variant", "vanilla"}};
  o.path = dir_ / "partial.h5";
  FactorDump dump(o);
  ObserverSet set;
  for (const auto& ob : dump.observers()) set.add(ob);
  at::Tensor ids = at::randint(3, 200, {1, 12}, at::kLong);
  dump.begin_batch({0}, {12});
  model->forward(ids, nullptr, ForwardContext{attn.get(), &set});
  dump.end_batch();
  {
    H5Reader mid(dir_ / "partial.h5");  // while the writer is open
    EXPECT_EQ(mid.attr_int("/", "complete"), 0);
    EXPECT_EQ(mid.attr_int("/", "n_sequences"), 1);
    EXPECT_EQ(mid.shape("factor2/layer_00/entropy"), (std::vector<int64_t>{1, c.n_head, 12}));
  }
  dump.begin_batch({1}, {9});
  model->forward(ids.narrow(1, 0, 9), nullptr, ForwardContext{attn.get(), &set});
  dump.end_batch();
  dump.finish();
  H5Reader done(dir_ / "partial.h5");
  EXPECT_EQ(done.attr_int("/", "complete"), 1);
  EXPECT_EQ(done.shape("factor2/layer_01/entropy"), (std::vector<int64_t>{2, c.n_head, 12}));
  EXPECT_TRUE(done.exists("factor1/layer_01/run_max"));
}

TEST_F(DumpRun, BadDumpSectionsAreRefusedBeforeRunning) {
  auto expect_error = [&](const std::string& text, const std::string& want) {
    write_text(dir_ / "bad.yaml", text);
    try {
      load_experiment((dir_ / "bad.yaml").string(), {}, 1);
      FAIL() << "expected an error about " << want;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  const std::string task = "{type: attention_dump, max_length: 40}";
  expect_error(yaml(task, ""), "records nothing without a dump section");
  expect_error(yaml(task, "dump: {factors: [entropy], layers: [0, 2]}\n"), "dump.layers: 2 is not a layer");
  expect_error(yaml(task, "dump: {factors: [entropy], heads: [4]}\n"), "dump.heads: 4");
  expect_error(yaml(task, "dump: {factors: [entropy], hidden_states: [3]}\n"), "dump.hidden_states: 3");
  expect_error(yaml(task, "dump: {factors: [entropy], distance_edges: [0, 8, 8]}\n"), "increase strictly");
  expect_error(yaml(task, "dump: {factors: [entropie]}\n"), "dump.factors");
  expect_error(yaml(task, "dump: {factors: [entropy], file: a/b.h5}\n"), "plain file name");
}

}  // namespace
}  // namespace lminf
