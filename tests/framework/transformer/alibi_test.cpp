// ALiBi slopes as MPT computes them, for power-of-two and other head counts.
#include <gtest/gtest.h>

#include <cmath>

#include "framework/transformer/alibi.h"

namespace lminf {
namespace {

TEST(Alibi, PowerOfTwoHeadsAreGeometric) {
  at::Tensor s = alibi_slopes(8, 8.0);
  ASSERT_EQ(s.size(0), 8);
  for (int64_t i = 0; i < 8; ++i) EXPECT_FLOAT_EQ(s[i].item<float>(), std::pow(2.0f, -float(i + 1)));
  // MPT-7B: 32 heads, bias_max 8 -> 2^(-(i+1)/4).
  at::Tensor s32 = alibi_slopes(32, 8.0);
  for (int64_t i = 0; i < 32; ++i) EXPECT_FLOAT_EQ(s32[i].item<float>(), std::pow(2.0f, -float(i + 1) / 4.0f));
}

TEST(Alibi, OtherHeadCountsInterleaveTheNextPowerOfTwo) {
  // 6 heads: the 8-head slopes 2^-1..2^-8, odd indices first (2^-2, 2^-4, 2^-6, 2^-8), then even.
  at::Tensor s = alibi_slopes(6, 8.0);
  const float want[] = {0.25f, 0.0625f, 0.015625f, 0.00390625f, 0.5f, 0.125f};
  ASSERT_EQ(s.size(0), 6);
  for (int64_t i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(s[i].item<float>(), want[i]) << i;
  // 3 heads with bias_max 4: P = 4, slopes 2^-1, 2^-2, 2^-3, 2^-4 -> (2^-2, 2^-4, 2^-1).
  at::Tensor s3 = alibi_slopes(3, 4.0);
  EXPECT_FLOAT_EQ(s3[0].item<float>(), 0.25f);
  EXPECT_FLOAT_EQ(s3[1].item<float>(), 0.0625f);
  EXPECT_FLOAT_EQ(s3[2].item<float>(), 0.5f);
  EXPECT_FLOAT_EQ(alibi_slopes(1, 8.0)[0].item<float>(), 1.0f / 256.0f);
}

}  // namespace
}  // namespace lminf
