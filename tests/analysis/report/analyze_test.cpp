// lminf analyze on hand-made inputs: the tables hold the hand-computed values, the PCA equals an
// eigendecomposition of the covariance, the separation score is what its definition says, readers
// refuse files they do not understand, and the plots are produced.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "analysis/report/analyze.h"
#include "analysis/report/curve.h"
#include "analysis/report/gnuplot.h"
#include "analysis/report/pca.h"
#include "analysis/report/run_file.h"
#include "framework/core/error.h"
#include "framework/io/h5_file.h"
#include "support/test_support.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using lminf::testing::read_text;
using lminf::testing::TempDir;

const float kNan = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

// A small factor dump written by hand (values chosen for hand computation; see each expectation),
// with some datasets replaced.
void write_hand_dump(const fs::path& p, const std::map<std::string, at::Tensor>& replace = {}) {
  H5Writer h5(p);
  // Each dataset as below, or its replacement (the hostile-dump test edits one at a time).
  auto put = [&](const std::string& name, const at::Tensor& t) {
    auto it = replace.find(name);
    h5.write(name, it == replace.end() ? t : it->second);
  };
  h5.set_attr("/", "schema", "lminf.factors");
  h5.set_attr("/", "schema_version", int64_t{1});
  h5.set_attr("/", "name", "hand");
  h5.set_attr("/", "variant", "vanilla");
  h5.set_attr("/", "max_position_embeddings", int64_t{4});
  h5.set_attr("/", "n_head", int64_t{1});
  h5.set_attr("/", "n_head_kv", int64_t{1});
  h5.set_attr("/", "complete", int64_t{1});
  put("factor1/query_position", at::tensor({3, 2}, at::kLong));
  put("factor1/query_sequence", at::tensor({0, 1}, at::kLong));
  // Row 0, query 3: keys 0..3 = 5, 1, 2, 0 -> by distance 0, 2, 1, 5 -> bound 0, 2, 2, 5.
  // Row 1, query 2: keys 0..2 = 1, 4, 3    -> by distance 3, 4, 1    -> bound 3, 4, 4.
  put("factor1/layer_00/query_logits", at::tensor({5.f, 1.f, 2.f, 0.f, 1.f, 4.f, 3.f, kNan}).view({2, 1, 4}));
  put("factor1/distance_edges", at::tensor({0, 2, 4}, at::kLong));
  put("factor1/layer_00/bucket_max", at::tensor({2.f, 5.f, 4.f, -kInf}).view({2, 1, 2}));
  put("factor1/layer_00/bucket_sum", at::tensor({3.0, 6.0, 8.0, 0.0}, at::kDouble).view({2, 1, 2}));
  put("factor1/layer_00/bucket_count", at::tensor({2, 2, 2, 0}, at::kLong).view({2, 1, 2}));
  put("factor2/layer_00/entropy", at::tensor({0.f, 0.5f, 1.f, 0.f, 0.7f, kNan}).view({2, 1, 3}));
  put("factor2/layer_00/visible_keys", at::tensor({1, 2, 3, 1, 2, 0}, at::kInt).view({2, 1, 3}));
  // Factor 3: positions 0, 1 sit at (+-1, 5); the rest around the origin.
  put("factor3/sample_position", at::tensor({0, 1, 2, 3, 4, 5}, at::kLong));
  put("factor3/sample_sequence", at::zeros({6}, at::kLong));
  put("factor3/hidden/hs_01",
           at::tensor({1.f, 5.f, -1.f, 5.f, 1.f, 0.f, -1.f, 0.f, 0.f, 1.f, 0.f, -1.f}).view({6, 2}));
  h5.set_attr("factor3", "heads", std::vector<int64_t>{0});
  h5.set_attr("factor3", "kv_heads", std::vector<int64_t>{0});
  h5.commit();
}

void write_hand_nll(const fs::path& p) {
  H5Writer h5(p);
  h5.set_attr("/", "schema", "lminf.token_nll");
  h5.set_attr("/", "schema_version", int64_t{1});
  h5.set_attr("/", "name", "ppl");
  h5.write("token_nll", at::tensor({1.f, 2.f, 3.f, 3.f, kNan, kNan}).view({2, 3}));
  h5.write("lengths", at::tensor({3, 1}, at::kLong));
  h5.commit();
}

// CSV rows as maps column -> text.
std::vector<std::map<std::string, std::string>> read_csv(const fs::path& p) {
  std::istringstream in(read_text(p));
  std::string line;
  std::vector<std::string> cols;
  std::vector<std::map<std::string, std::string>> rows;
  auto split = [](const std::string& l) {
    std::vector<std::string> out;
    std::stringstream ss(l);
    std::string cell;
    while (std::getline(ss, cell, ',')) out.push_back(cell);
    return out;
  };
  std::getline(in, line);
  cols = split(line);
  while (std::getline(in, line)) {
    auto cells = split(line);
    std::map<std::string, std::string> r;
    for (size_t i = 0; i < cols.size() && i < cells.size(); ++i) r[cols[i]] = cells[i];
    rows.push_back(r);
  }
  return rows;
}

double num(const std::map<std::string, std::string>& r, const std::string& c) {
  const std::string& s = r.at(c);
  return s == "nan" ? std::nan("") : std::stod(s);
}

class Analyze : public ::testing::Test {
 protected:
  void SetUp() override {
    write_hand_dump(dir_ / "hand.h5");
    write_hand_nll(dir_ / "nll.h5");
  }
  AnalyzeOptions options(bool plots) const {
    AnalyzeOptions o;
    o.inputs = {dir_ / "hand.h5", dir_ / "nll.h5"};
    o.out_dir = dir_ / "out";
    o.ema_gamma = 0.5;
    o.first_tokens = 2;
    o.plots = plots;
    return o;
  }
  TempDir dir_;
};

TEST_F(Analyze, TablesHoldHandComputedValues) {
  nlohmann::json s = analyze(options(false));
  EXPECT_EQ(s["plots_skipped"], "--no-plots");

  auto f1 = read_csv(dir_ / "out" / "factor1_bound.csv");
  ASSERT_EQ(f1.size(), 4u);
  const double want_mean[] = {1.5, 3, 3, 5}, want_std[] = {std::sqrt(4.5), std::sqrt(2.0), std::sqrt(2.0), NAN};
  const int want_n[] = {2, 2, 2, 1};
  for (size_t d = 0; d < 4; ++d) {
    EXPECT_EQ(f1[d].at("run"), "hand (vanilla)");
    EXPECT_EQ(num(f1[d], "distance"), static_cast<double>(d));
    EXPECT_NEAR(num(f1[d], "bound_mean"), want_mean[d], 1e-6);
    if (std::isnan(want_std[d])) EXPECT_TRUE(std::isnan(num(f1[d], "bound_std")));
    else EXPECT_NEAR(num(f1[d], "bound_std"), want_std[d], 1e-6);
    EXPECT_EQ(num(f1[d], "n"), want_n[d]);
  }
  EXPECT_NEAR(s["runs"][0]["factor1"]["layer_00"]["bound_at_distance"]["3"].get<double>(), 5.0, 1e-9);

  // Buckets: bound lines (2, 5) and (4, 4); max over everything 4 and 5; mean (3 + 8) / 4 and 6 / 2.
  auto f1b = read_csv(dir_ / "out" / "factor1_buckets.csv");
  ASSERT_EQ(f1b.size(), 2u);
  EXPECT_NEAR(num(f1b[0], "max_logit"), 4, 1e-6);
  EXPECT_NEAR(num(f1b[1], "max_logit"), 5, 1e-6);
  EXPECT_NEAR(num(f1b[0], "mean_logit"), 2.75, 1e-6);
  EXPECT_NEAR(num(f1b[1], "mean_logit"), 3, 1e-6);
  EXPECT_NEAR(num(f1b[0], "bound_mean"), 3, 1e-6);
  EXPECT_NEAR(num(f1b[1], "bound_mean"), 4.5, 1e-6);
  EXPECT_NEAR(num(f1b[1], "bound_std"), std::sqrt(0.5), 1e-6);
  EXPECT_EQ(num(f1b[1], "bucket_lo"), 2);

  auto f2 = read_csv(dir_ / "out" / "factor2_entropy.csv");
  ASSERT_EQ(f2.size(), 3u);
  EXPECT_NEAR(num(f2[1], "entropy_mean"), 0.6, 1e-6);
  EXPECT_NEAR(num(f2[1], "entropy_std"), std::sqrt(0.02), 1e-6);
  EXPECT_NEAR(num(f2[2], "entropy_mean"), 1.0, 1e-6);
  EXPECT_EQ(num(f2[2], "n"), 1);
  EXPECT_NEAR(num(f2[1], "log_bound"), std::log(2.0), 1e-6);
  EXPECT_NEAR(num(f2[2], "log_bound"), std::log(3.0), 1e-6);

  // NLL per position 2, 2, 3; EMA (gamma 0.5, started at the first value) 2, 2, 2.5.
  auto nll = read_csv(dir_ / "out" / "nll.csv");
  ASSERT_EQ(nll.size(), 3u);
  EXPECT_EQ(nll[0].at("run"), "ppl");
  EXPECT_NEAR(num(nll[0], "nll_mean"), 2, 1e-6);
  EXPECT_NEAR(num(nll[2], "nll_mean"), 3, 1e-6);
  EXPECT_NEAR(num(nll[2], "nll_ema"), 2.5, 1e-6);

  // Factor 3: first tokens (positions 0, 1) centroid (0, 5); rest centroid (0, 0) with RMS radius 1.
  auto sep = read_csv(dir_ / "out" / "factor3_separation.csv");
  ASSERT_EQ(sep.size(), 1u);
  EXPECT_EQ(sep[0].at("site"), "hidden_states");
  EXPECT_NEAR(num(sep[0], "separation"), 5.0, 1e-6);
  EXPECT_NEAR(num(sep[0], "separation_pca"), 5.0, 1e-6);  // d = 2: the PCA is a rotation
  EXPECT_EQ(read_csv(dir_ / "out" / "factor3_pca.csv").size(), 6u);

  // A second analysis into the same folder is refused unless asked.
  EXPECT_THROW(analyze(options(false)), Error);
  AnalyzeOptions again = options(false);
  again.overwrite = true;
  EXPECT_NO_THROW(analyze(again));
}

// Datasets whose shapes disagree with the schema or with each other, or hold positions outside their
// axis, are refused naming the file and the dataset before their data are used.
TEST_F(Analyze, HostileDumpShapesNamed) {
  const std::vector<std::pair<std::string, at::Tensor>> edits = {
      {"factor3/hidden/hs_01", at::zeros({5, 2})},                      // a row short of sample_position
      {"factor2/layer_00/visible_keys", at::zeros({0, 0, 0}, at::kInt)},  // disagrees with entropy
      {"factor1/layer_00/bucket_sum", at::tensor(1.0, at::kDouble)},      // a scalar
      {"factor1/distance_edges", at::tensor({0}, at::kLong)},             // no bucket
      {"factor1/query_position", at::tensor({3, 9}, at::kLong)},          // past max_length
      {"factor3/sample_sequence", at::zeros({2}, at::kLong)},             // fewer rows than positions
  };
  for (const auto& [name, t] : edits) {
    TempDir d;
    write_hand_dump(d / "bad.h5", {{name, t}});
    AnalyzeOptions o;
    o.inputs = {d / "bad.h5"};
    o.out_dir = d / "out";
    o.plots = false;
    const std::string e = lminf::testing::error_of([&] { analyze(o); });
    EXPECT_NE(e.find((d / "bad.h5").string() + ": dataset '" + name + "'"), std::string::npos) << name << ": " << e;
  }
}

TEST_F(Analyze, PlotsAreProduced) {
  if (find_gnuplot().empty()) GTEST_SKIP() << "gnuplot not installed";
  AnalyzeOptions o = options(true);
  o.labels = {"vanilla", "perplexity"};
  nlohmann::json s = analyze(o);
  EXPECT_FALSE(s.contains("plots_skipped"));
  const std::vector<std::string> want = {"factor1_bound", "factor1_buckets", "factor2_entropy",
                                         "factor3_pca_run0_hidden_states", "nll"};
  for (const auto& stem : want) {
    for (const char* ext : {".png", ".svg"}) {
      const fs::path p = dir_ / "out" / (stem + ext);
      ASSERT_TRUE(fs::exists(p)) << p;
      EXPECT_GT(fs::file_size(p), 1000u) << p;
    }
    std::ifstream png(dir_ / "out" / (stem + ".png"), std::ios::binary);
    char magic[4] = {};
    png.read(magic, 4);
    EXPECT_EQ(std::string(magic + 1, 3), "PNG") << stem;
    EXPECT_NE(read_text(dir_ / "out" / (stem + ".svg")).find("<svg"), std::string::npos);
  }
  EXPECT_NE(read_text(dir_ / "out" / "factor1_bound.csv").find("vanilla"), std::string::npos);
}

TEST(RunFile, RefusesWhatItDoesNotUnderstand) {
  TempDir dir;
  auto write = [&](const std::string& name, const std::string& schema, int64_t version) {
    H5Writer h5(dir / name);
    if (!schema.empty()) h5.set_attr("/", "schema", schema);
    if (version > 0) h5.set_attr("/", "schema_version", version);
    h5.write("x", at::zeros({2}));
    h5.commit();
    return dir / name;
  };
  auto expect_refusal = [](const fs::path& p, const std::string& why) {
    try {
      open_run_file(p, "");
      FAIL() << "expected a refusal of " << p;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
    }
  };
  expect_refusal(write("none.h5", "", 0), "no root attribute 'schema'");
  expect_refusal(write("other.h5", "lminf.results", 1), "schema 'lminf.results' is not one lminf analyze reads");
  expect_refusal(write("newer.h5", "lminf.factors", 2), "schema_version 2 is not one this lminf understands");
  expect_refusal(write("noversion.h5", "lminf.token_nll", 0), "without a schema_version");
  RunFile ok = open_run_file(write("ok.h5", "lminf.token_nll", 1), "mine");
  EXPECT_EQ(ok.kind, RunFileKind::kTokenNll);
  EXPECT_EQ(ok.label, "mine");
}

TEST(Pca, EqualsEigendecompositionOfTheCovariance) {
  at::manual_seed(5);
  at::Tensor x = at::randn({53, 7}, at::kDouble) * at::tensor({5.0, 3.0, 1.0, 0.5, 0.4, 0.3, 0.2}, at::kDouble) + 2.0;
  x = at::matmul(x, std::get<0>(at::linalg_qr(at::randn({7, 7}, at::kDouble))));  // a random rotation
  const Pca2 p = pca_2d(x);
  at::Tensor c = x - x.mean(0);
  auto [evals, evecs] = at::linalg_eigh(at::matmul(c.t(), c) / 52.0);  // ascending
  for (int64_t i = 0; i < 2; ++i) {
    at::Tensor v = evecs.select(1, 6 - i);
    EXPECT_NEAR(std::abs(at::dot(v, p.components[i]).item<double>()), 1.0, 1e-9);
    EXPECT_NEAR(p.explained_variance_ratio[static_cast<size_t>(i)], (evals[6 - i] / evals.sum()).item<double>(), 1e-9);
  }
  EXPECT_LT((p.scores - at::matmul(c, p.components.t())).abs().max().item<double>(), 1e-9);
  EXPECT_NEAR(p.scores.select(1, 0).var().item<double>(), evals[6].item<double>(), 1e-8);
}

TEST(Pca, SeparationScoreOnASyntheticCase) {
  // Rest: (+-1, 0, 0), (0, +-1, 0): centroid 0, RMS radius 1. Group: two points at (3, 4, 0) -> 5.
  at::Tensor x = at::tensor({1., 0., 0., -1., 0., 0., 0., 1., 0., 0., -1., 0., 3., 4., 0., 3., 4., 0.}, at::kDouble).view({6, 3});
  at::Tensor group = at::tensor({0, 0, 0, 0, 1, 1}, at::kLong).to(at::kBool);
  EXPECT_NEAR(separation_score(x, group), 5.0, 1e-12);
  EXPECT_TRUE(std::isnan(separation_score(x, at::zeros({6}, at::kBool))));  // no group
}

TEST(Curve, MeanStdAndEma) {
  Curve c = mean_std_over_lines(at::tensor({1.0, NAN, 3.0, 5.0, 2.0, -INFINITY}, at::kDouble).view({2, 3}));
  EXPECT_DOUBLE_EQ(c.mean[0], 3.0);
  EXPECT_DOUBLE_EQ(c.std[0], std::sqrt(8.0));
  EXPECT_EQ(c.n[1], 1);
  EXPECT_TRUE(std::isnan(c.std[1]));
  EXPECT_DOUBLE_EQ(c.mean[2], 3.0);
  const std::vector<double> e = ema({NAN, 2, 4, NAN, 0}, 0.5);
  ASSERT_EQ(e.size(), 5u);
  EXPECT_TRUE(std::isnan(e[0]));
  EXPECT_EQ(std::vector<double>(e.begin() + 1, e.end()), (std::vector<double>{2, 3, 3, 1.5}));
}

}  // namespace
}  // namespace lminf
