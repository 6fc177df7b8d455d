// Rotary embeddings: the relative-position property, and each rope_scaling type against the
// Hugging Face formula recomputed here in float64, element by element.
#include <gtest/gtest.h>

#include <cmath>

#include "framework/core/error.h"
#include "framework/transformer/rope.h"

namespace lminf {
namespace {

std::vector<double> base_inv(double theta, int64_t dim) {
  std::vector<double> v;
  for (int64_t i = 0; i < dim; i += 2) v.push_back(1.0 / std::pow(theta, double(i) / double(dim)));
  return v;
}

void expect_close(const at::Tensor& got, const std::vector<double>& want, double rel = 1e-5) {
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size()));
  auto g = got.to(at::kDouble);
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(g[static_cast<int64_t>(i)].item<double>(), want[i], rel * std::abs(want[i]) + 1e-12) << "i=" << i;
}

TEST(Rope, LogitDependsOnlyOnRelativePosition) {
  RotaryEmbedding rope(16, 10000.0, 128, RopeScaling{});
  at::manual_seed(0);
  at::Tensor q = at::randn({1, 1, 1, 16}, at::kDouble), k = at::randn({1, 1, 1, 16}, at::kDouble);
  auto logit = [&](int64_t a, int64_t b) {
    at::Tensor qa = rope.rotate(q, at::tensor({a}, at::kLong), 0).to(at::kDouble);
    at::Tensor kb = rope.rotate(k, at::tensor({b}, at::kLong), 0).to(at::kDouble);
    return (qa * kb).sum().item<double>();
  };
  EXPECT_NEAR(logit(10, 3), logit(107, 100), 1e-4);
  EXPECT_NEAR(logit(5, 5), (q * k).sum().item<double>(), 1e-5);
  EXPECT_GT(std::abs(logit(10, 3) - logit(10, 4)), 1e-4);
}

TEST(Rope, RotateHalfLayout) {
  // One pair (x_0, x_{D/2}) rotates by angle pos * inv_freq[0] = pos.
  RotaryEmbedding rope(4, 10000.0, 64, RopeScaling{});
  at::Tensor x = at::zeros({1, 1, 1, 4}, at::kFloat);
  x[0][0][0][0] = 1.0;
  at::Tensor y = rope.rotate(x, at::tensor({1}, at::kLong), 0);
  EXPECT_NEAR(y[0][0][0][0].item<float>(), std::cos(1.0), 1e-6);
  EXPECT_NEAR(y[0][0][0][2].item<float>(), std::sin(1.0), 1e-6);
}

TEST(Rope, InterleavedPartialLayoutAsGptJ) {
  // GPT-J: rotary_dim 4 of a 6-feature head; pairs (x0, x1), (x2, x3) turn by pos * theta^(-2i/4);
  // x4, x5 pass through (rotate_every_two with sin/cos repeated per pair).
  RotaryEmbedding rope(4, 10000.0, 64, RopeScaling{}, RopeLayout::kInterleaved);
  at::manual_seed(3);
  at::Tensor x = at::randn({1, 1, 2, 6}, at::kDouble);
  at::Tensor y = rope.rotate(x, at::tensor({3, 7}, at::kLong), 0);
  for (int64_t t = 0; t < 2; ++t) {
    const double pos = t == 0 ? 3.0 : 7.0;
    for (int64_t i = 0; i < 2; ++i) {
      const double ang = pos * static_cast<float>(1.0 / std::pow(10000.0, 2.0 * double(i) / 4.0));
      const double a = x[0][0][t][2 * i].item<double>(), b = x[0][0][t][2 * i + 1].item<double>();
      EXPECT_NEAR(y[0][0][t][2 * i].item<double>(), a * std::cos(ang) - b * std::sin(ang), 1e-6);
      EXPECT_NEAR(y[0][0][t][2 * i + 1].item<double>(), b * std::cos(ang) + a * std::sin(ang), 1e-6);
    }
    EXPECT_EQ(y[0][0][t][4].item<double>(), x[0][0][t][4].item<double>());
    EXPECT_EQ(y[0][0][t][5].item<double>(), x[0][0][t][5].item<double>());
  }
}

TEST(Rope, Linear) {
  RopeScaling s;
  s.type = "linear";
  s.factor = 4.0;
  RotaryEmbedding rope(64, 10000.0, 2048, s);
  auto want = base_inv(10000.0, 64);
  for (auto& x : want) x /= 4.0;
  expect_close(rope.inv_freq(100), want);
}

TEST(Rope, DynamicNtkGrowsBaseOnlyPastTrainedLength) {
  RopeScaling s;
  s.type = "dynamic";
  s.factor = 2.0;
  RotaryEmbedding rope(64, 10000.0, 1024, s);
  expect_close(rope.inv_freq(1024), base_inv(10000.0, 64));
  const double seq = 4096, dim = 64;
  const double base = 10000.0 * std::pow(2.0 * seq / 1024.0 - 1.0, dim / (dim - 2.0));
  expect_close(rope.inv_freq(4096), base_inv(base, 64));
}

TEST(Rope, Llama3) {
  RopeScaling s;
  s.type = "llama3";
  s.factor = 8.0;
  s.low_freq_factor = 1.0;
  s.high_freq_factor = 4.0;
  s.original_max_position_embeddings = 8192;
  RotaryEmbedding rope(128, 500000.0, 131072, s);
  std::vector<double> want;
  for (double f : base_inv(500000.0, 128)) {
    const double wavelen = 2 * M_PI / f, low = 8192.0 / 1.0, high = 8192.0 / 4.0;
    if (wavelen < high) want.push_back(f);
    else if (wavelen > low) want.push_back(f / 8.0);
    else {
      const double smooth = (8192.0 / wavelen - 1.0) / (4.0 - 1.0);
      want.push_back((1 - smooth) * f / 8.0 + smooth * f);
    }
  }
  expect_close(rope.inv_freq(10), want);
  EXPECT_EQ(rope.attention_scaling(), 1.0);
}

TEST(Rope, Yarn) {
  RopeScaling s;
  s.type = "yarn";
  s.factor = 4.0;
  RotaryEmbedding rope(64, 10000.0, 2048, s);
  const double dim = 64, base = 10000.0, orig = 2048;
  auto corr = [&](double r) { return dim * std::log(orig / (r * 2 * M_PI)) / (2 * std::log(base)); };
  double low = std::max(0.0, std::floor(corr(32))), high = std::min(dim - 1, std::ceil(corr(1)));
  std::vector<double> want;
  auto inv = base_inv(base, 64);
  for (size_t i = 0; i < inv.size(); ++i) {
    double ramp = std::min(1.0, std::max(0.0, (double(i) - low) / (high - low)));
    double extrap_factor = 1.0 - ramp;
    want.push_back(inv[i] / 4.0 * (1 - extrap_factor) + inv[i] * extrap_factor);
  }
  expect_close(rope.inv_freq(10), want);
  EXPECT_NEAR(rope.attention_scaling(), 0.1 * std::log(4.0) + 1.0, 1e-12);
  // cos/sin carry the attention factor.
  auto cs = rope.cos_sin(at::tensor({0}, at::kLong), 1);
  EXPECT_NEAR(cs.first[0][0].item<float>(), rope.attention_scaling(), 1e-6);
}

TEST(Rope, UnknownTypeRejected) {
  nlohmann::json j = {{"rope_type", "longrope"}, {"factor", 2.0}};
  try {
    RopeScaling::from_json(j, "cfg.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("longrope"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("cfg.json"), std::string::npos);
  }
}

}  // namespace
}  // namespace lminf
