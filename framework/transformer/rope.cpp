#include "framework/transformer/rope.h"

#include <algorithm>
#include <cmath>

#include "framework/core/error.h"

namespace lminf {
namespace {

// 1 / base^(2i/dim), i = 0..dim/2-1, float32 as HF computes it (arange in int64, then float).
at::Tensor default_inv_freq(double base, int64_t dim) {
  at::Tensor i = at::arange(0, dim, 2, at::kLong).to(at::kFloat);
  return 1.0 / at::pow(base, i / static_cast<double>(dim));
}

double yarn_get_mscale(double scale, double mscale) {
  if (scale <= 1.0) return 1.0;
  return 0.1 * mscale * std::log(scale) + 1.0;
}

}  // namespace

RotaryEmbedding::RotaryEmbedding(int64_t rot_dim, double theta, int64_t max_position_embeddings,
                                 RopeScaling scaling, RopeLayout layout)
    : rot_dim_(rot_dim),
      theta_(theta),
      max_pos_(max_position_embeddings),
      scaling_(std::move(scaling)),
      layout_(layout) {
  if (rot_dim_ <= 0 || rot_dim_ % 2 != 0) fail("rotary dimension must be positive and even, got ", rot_dim_);
  const std::string& type = scaling_.type;
  const double factor = scaling_.factor;
  at::Tensor inv = default_inv_freq(theta_, rot_dim_);
  if (type == "default" || type == "dynamic") {
    // dynamic: below the trained length HF uses the plain frequencies.
  } else if (type == "linear") {
    inv = inv / factor;
  } else if (type == "llama3") {
    const double old_len = static_cast<double>(*scaling_.original_max_position_embeddings);
    const double low_wavelen = old_len / scaling_.low_freq_factor;
    const double high_wavelen = old_len / scaling_.high_freq_factor;
    at::Tensor wavelen = 2.0 * M_PI / inv;
    at::Tensor llama = at::where(wavelen > low_wavelen, inv / factor, inv);
    at::Tensor smooth = (old_len / wavelen - scaling_.low_freq_factor) /
                        (scaling_.high_freq_factor - scaling_.low_freq_factor);
    at::Tensor smoothed = (1.0 - smooth) * llama / factor + smooth * llama;
    at::Tensor medium = at::logical_and(at::logical_not(wavelen < high_wavelen),
                                        at::logical_not(wavelen > low_wavelen));
    inv = at::where(medium, smoothed, llama);
  } else if (type == "yarn") {
    // As transformers' _compute_yarn_parameters: with original_max_position_embeddings given, the
    // factor is max_position_embeddings / original (DeepSeek-V3 convention), else rope_scaling.factor.
    double f = factor;
    double orig = static_cast<double>(max_pos_);
    if (scaling_.original_max_position_embeddings) {
      orig = static_cast<double>(*scaling_.original_max_position_embeddings);
      f = static_cast<double>(max_pos_) / orig;
    }
    if (scaling_.attention_factor) {
      attention_scaling_ = *scaling_.attention_factor;
    } else if (scaling_.mscale && scaling_.mscale_all_dim && *scaling_.mscale != 0 && *scaling_.mscale_all_dim != 0) {
      attention_scaling_ = yarn_get_mscale(f, *scaling_.mscale) / yarn_get_mscale(f, *scaling_.mscale_all_dim);
    } else {
      attention_scaling_ = yarn_get_mscale(f, 1.0);
    }
    const double beta_fast = scaling_.beta_fast.value_or(32.0);
    const double beta_slow = scaling_.beta_slow.value_or(1.0);
    const double dim = static_cast<double>(rot_dim_);
    auto correction_dim = [&](double n_rot) {
      return (dim * std::log(orig / (n_rot * 2.0 * M_PI))) / (2.0 * std::log(theta_));
    };
    double low = correction_dim(beta_fast), high = correction_dim(beta_slow);
    if (scaling_.truncate) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, dim - 1.0);
    if (low == high) high += 0.001;
    const int64_t half = rot_dim_ / 2;
    at::Tensor ramp = at::clamp((at::arange(half, at::kFloat) - low) / (high - low), 0.0, 1.0);
    at::Tensor extrapolation_factor = 1.0 - ramp;
    at::Tensor pos_freqs = at::pow(theta_, at::arange(0, rot_dim_, 2, at::kLong).to(at::kFloat) / dim);
    at::Tensor extrap = 1.0 / pos_freqs;
    at::Tensor interp = 1.0 / (f * pos_freqs);
    inv = interp * (1.0 - extrapolation_factor) + extrap * extrapolation_factor;
  } else {
    fail("rope_scaling type \"", type, "\" is not supported (supported: default, linear, dynamic, yarn, llama3)");
  }
  inv_freq_ = inv.to(at::kFloat).contiguous();
}

bool RotaryEmbedding::length_dependent() const { return scaling_.type == "dynamic"; }

at::Tensor RotaryEmbedding::inv_freq(int64_t seq_len) const {
  if (scaling_.type == "dynamic" && seq_len > max_pos_) {
    // transformers' _compute_dynamic_ntk_parameters: grow the base with the sequence length.
    const double factor = scaling_.factor;
    const double dim = static_cast<double>(rot_dim_);
    const double base = theta_ * std::pow(factor * static_cast<double>(seq_len) / static_cast<double>(max_pos_) -
                                              (factor - 1.0),
                                          dim / (dim - 2.0));
    return default_inv_freq(base, rot_dim_);
  }
  return inv_freq_;
}

std::pair<at::Tensor, at::Tensor> RotaryEmbedding::cos_sin(const at::Tensor& positions, int64_t seq_len) const {
  at::Tensor inv = inv_freq(seq_len);
  at::Tensor freqs = at::outer(positions.to(at::kFloat), inv.to(positions.device()));  // [T, rot_dim/2]
  at::Tensor emb = layout_ == RopeLayout::kHalf ? at::cat({freqs, freqs}, -1)   // [T, rot_dim]
                                                : freqs.repeat_interleave(2, -1);
  at::Tensor c = at::cos(emb), s = at::sin(emb);
  if (attention_scaling_ != 1.0) {
    c = c * attention_scaling_;
    s = s * attention_scaling_;
  }
  return {c, s};
}

at::Tensor RotaryEmbedding::apply(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                  RopeLayout layout) {
  const int64_t rot = cos.size(-1);
  const int64_t d = x.size(-1);
  at::Tensor xr = rot == d ? x : x.narrow(-1, 0, rot);
  at::Tensor c = cos.to(x.device(), x.scalar_type()), s = sin.to(x.device(), x.scalar_type());
  at::Tensor rotated;
  if (layout == RopeLayout::kHalf) {
    at::Tensor x1 = xr.narrow(-1, 0, rot / 2), x2 = xr.narrow(-1, rot / 2, rot / 2);
    rotated = at::cat({-x2, x1}, -1);
  } else {
    at::Tensor even = xr.slice(-1, 0, rot, 2), odd = xr.slice(-1, 1, rot, 2);
    rotated = at::stack({-odd, even}, -1).flatten(-2);
  }
  at::Tensor out = xr * c + rotated * s;
  if (rot == d) return out;
  return at::cat({out, x.narrow(-1, rot, d - rot)}, -1);
}

at::Tensor RotaryEmbedding::rotate(const at::Tensor& x, const at::Tensor& positions, int64_t seq_len) const {
  auto cs = cos_sin(positions.to(x.device()), seq_len);
  return apply(x, cs.first, cs.second, layout_);
}

}  // namespace lminf
