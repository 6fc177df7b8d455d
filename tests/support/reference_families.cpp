#include "support/reference_families.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace lminf::testing {
namespace {

const at::Tensor& get(const WeightMap& w, const std::string& name) {
  auto it = w.find(name);
  if (it == w.end()) throw std::runtime_error("reference: missing " + name);
  return it->second;
}

const at::Tensor* find(const WeightMap& w, const std::string& name) {
  auto it = w.find(name);
  return it == w.end() ? nullptr : &it->second;
}

// y = x W^T (+ b when present).
at::Tensor linear(const at::Tensor& x, const WeightMap& w, const std::string& name) {
  at::Tensor y = at::matmul(x, get(w, name + ".weight").t());
  if (const at::Tensor* b = find(w, name + ".bias")) y = y + *b;
  return y;
}

// LayerNorm over the last axis with the biased variance; bias optional.
at::Tensor layer_norm(const at::Tensor& x, const WeightMap& w, const std::string& name, double eps) {
  at::Tensor mu = x.mean(-1, true);
  at::Tensor var = ((x - mu) * (x - mu)).mean(-1, true);
  at::Tensor y = (x - mu) / at::sqrt(var + eps) * get(w, name + ".weight");
  if (const at::Tensor* b = find(w, name + ".bias")) y = y + *b;
  return y;
}

AttentionRule causal_rule(int64_t T) {
  at::Tensor i = at::arange(T, at::kLong).unsqueeze(1), j = at::arange(T, at::kLong).unsqueeze(0);
  return {j <= i, i.expand({T, T}).clone(), j.expand({T, T}).clone(), at::zeros({T, T}, at::kDouble)};
}

// The rule's tables as [H, T, T].
AttentionRule per_head(const AttentionRule& r, int64_t H) {
  auto e = [&](const at::Tensor& t) { return t.dim() == 4 ? t[0] : t.unsqueeze(0).expand({H, t.size(0), t.size(1)}); };
  return {e(r.visible), e(r.q_pos), e(r.k_pos), e(r.bias), r.q_scale};
}

// Softmax attention of one head from its logits [T, T] (invisible entries -inf) and values [T, D].
at::Tensor attend(at::Tensor s, const at::Tensor& visible, const at::Tensor& v) {
  s = s.masked_fill(at::logical_not(visible), -INFINITY);
  return at::matmul(at::softmax(s, -1), v);
}

// GPT-J rotation of every row of x [T, D] at position `pos`: pairs (2i, 2i+1), i < rot/2, turn by
// pos * 10000^(-2i/rot) (frequency and angle rounded to float32 as HF computes them); the rest pass.
at::Tensor rotate_every_two(const at::Tensor& x, double pos, int64_t rot) {
  at::Tensor out = x.clone();
  auto xa = x.accessor<double, 2>();
  auto oa = out.accessor<double, 2>();
  for (int64_t i = 0; i < rot / 2; ++i) {
    const float inv = static_cast<float>(1.0 / std::pow(10000.0, static_cast<double>(2 * i) / static_cast<double>(rot)));
    const double ang = static_cast<double>(static_cast<float>(static_cast<float>(pos) * inv));
    const double c = std::cos(ang), s = std::sin(ang);
    for (int64_t t = 0; t < x.size(0); ++t) {
      const double a = xa[t][2 * i], b = xa[t][2 * i + 1];
      oa[t][2 * i] = a * c - b * s;
      oa[t][2 * i + 1] = b * c + a * s;
    }
  }
  return out;
}

// x [T, D] rotated at every position `pos` [T, T] holds (integer or fractional), then picked per
// (query, key) entry: entry [i][j] is row `row_of`[i][j] rotated at pos[i][j]. Returns [T, T, D].
at::Tensor rotated_pick(const at::Tensor& x, const at::Tensor& pos, const at::Tensor& row_of, int64_t rot) {
  const int64_t T = x.size(0);
  auto [values, inverse] = at::_unique(pos.to(at::kDouble).reshape({-1}), /*sorted=*/true, /*return_inverse=*/true);
  std::vector<at::Tensor> all;
  auto va = values.accessor<double, 1>();
  for (int64_t u = 0; u < values.size(0); ++u) all.push_back(rotate_every_two(x, va[u], rot));
  at::Tensor flat = at::stack(all).view({values.size(0) * T, x.size(1)});
  at::Tensor index = inverse.view(pos.sizes()) * T + row_of;
  return flat.index_select(0, index.reshape({-1})).view({pos.size(0), pos.size(1), x.size(1)});
}

// The scaled logits' per-row factor of a rule ([T, 1]; 1 without a q_scale) times 1/sqrt(D).
at::Tensor row_scale(const AttentionRule& r, int64_t T, int64_t D) {
  const double s = 1.0 / std::sqrt(double(D));
  return r.q_scale.defined() ? r.q_scale.to(at::kDouble).view({T, 1}) * s : at::full({1, 1}, s, at::kDouble);
}

}  // namespace

std::vector<double> reference_alibi_slopes(int64_t n_head, double bias_max) {
  int64_t P = 1;
  while (P < n_head) P *= 2;
  std::vector<double> all;
  for (int64_t i = 0; i < P; ++i) all.push_back(std::pow(2.0, -static_cast<double>(i + 1) * bias_max / double(P)));
  if (P == n_head) return all;
  std::vector<double> out;
  for (int64_t i = 1; i < P; i += 2) out.push_back(all[static_cast<size_t>(i)]);
  for (int64_t i = 0; i < P; i += 2) out.push_back(all[static_cast<size_t>(i)]);
  out.resize(static_cast<size_t>(n_head));
  return out;
}

at::Tensor reference_mpt_logits(const WeightMap& w, const ModelConfig& c, const std::vector<int64_t>& ids,
                                const ReferenceRule& rule) {
  const int64_t T = static_cast<int64_t>(ids.size()), h = c.hidden_size, H = c.n_head, D = h / H;
  const std::vector<double> slopes = reference_alibi_slopes(H, c.alibi_bias_max);
  at::Tensor x = get(w, "transformer.wte.weight").index_select(0, at::tensor(ids, at::kLong));  // [T, h]
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string p = "transformer.blocks." + std::to_string(l) + ".";
    at::Tensor qkv = linear(layer_norm(x, w, p + "norm_1", c.layer_norm_eps), w, p + "attn.Wqkv");  // [T, 3h]
    if (c.clip_qkv) qkv = qkv.clamp(-*c.clip_qkv, *c.clip_qkv);
    at::Tensor q = qkv.narrow(1, 0, h), k = qkv.narrow(1, h, h), v = qkv.narrow(1, 2 * h, h);
    auto heads = [&](const at::Tensor& t) { return t.reshape({T, H, D}).permute({1, 0, 2}).unsqueeze(0); };
    AttentionRule r = per_head(rule ? rule(heads(q), heads(k), l) : causal_rule(T), H);
    std::vector<at::Tensor> outs;
    for (int64_t hd = 0; hd < H; ++hd) {
      at::Tensor qh = q.narrow(1, hd * D, D), kh = k.narrow(1, hd * D, D), vh = v.narrow(1, hd * D, D);
      at::Tensor dist = (r.q_pos[hd] - r.k_pos[hd]).to(at::kDouble);
      at::Tensor s = at::matmul(qh, kh.t()) * row_scale(r, T, D) - slopes[static_cast<size_t>(hd)] * dist + r.bias[hd];
      outs.push_back(attend(s, r.visible[hd], vh));
    }
    x = x + linear(at::cat(outs, 1), w, p + "attn.out_proj");
    at::Tensor u = linear(layer_norm(x, w, p + "norm_2", c.layer_norm_eps), w, p + "ffn.up_proj");
    at::Tensor gelu = 0.5 * u * (1.0 + at::erf(u / std::sqrt(2.0)));
    x = x + linear(gelu, w, p + "ffn.down_proj");
  }
  x = layer_norm(x, w, "transformer.norm_f", c.layer_norm_eps);
  return at::matmul(x, get(w, "transformer.wte.weight").t());
}

at::Tensor reference_gptj_logits(const WeightMap& w, const ModelConfig& c, const std::vector<int64_t>& ids,
                                 const ReferenceRule& rule) {
  const int64_t T = static_cast<int64_t>(ids.size()), h = c.hidden_size, H = c.n_head, D = h / H;
  const int64_t rot = c.rotary_dim > 0 ? c.rotary_dim : D;
  at::Tensor x = get(w, "transformer.wte.weight").index_select(0, at::tensor(ids, at::kLong));
  at::Tensor rows = at::arange(T, at::kLong).unsqueeze(1).expand({T, T});
  at::Tensor cols = at::arange(T, at::kLong).unsqueeze(0).expand({T, T});
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string p = "transformer.h." + std::to_string(l) + ".";
    at::Tensor hn = layer_norm(x, w, p + "ln_1", c.layer_norm_eps);
    at::Tensor q = linear(hn, w, p + "attn.q_proj"), k = linear(hn, w, p + "attn.k_proj");
    at::Tensor v = linear(hn, w, p + "attn.v_proj");
    auto heads = [&](const at::Tensor& t) { return t.reshape({T, H, D}).permute({1, 0, 2}).unsqueeze(0); };
    AttentionRule r = per_head(rule ? rule(heads(q), heads(k), l) : causal_rule(T), H);
    std::vector<at::Tensor> outs;
    for (int64_t hd = 0; hd < H; ++hd) {
      at::Tensor qh = q.narrow(1, hd * D, D).contiguous(), kh = k.narrow(1, hd * D, D).contiguous();
      at::Tensor qr = rotated_pick(qh, r.q_pos[hd].contiguous(), rows, rot);  // [T, T, D]
      at::Tensor kr = rotated_pick(kh, r.k_pos[hd].contiguous(), cols, rot);
      at::Tensor s = (qr * kr).sum(-1) * row_scale(r, T, D) + r.bias[hd];
      outs.push_back(attend(s, r.visible[hd], v.narrow(1, hd * D, D)));
    }
    at::Tensor attn = linear(at::cat(outs, 1), w, p + "attn.out_proj");
    at::Tensor u = linear(hn, w, p + "mlp.fc_in");
    at::Tensor act = c.hidden_act == "gelu_new"
                         ? 0.5 * u * (1.0 + at::tanh(std::sqrt(2.0 / M_PI) * (u + 0.044715 * u * u * u)))
                         : 0.5 * u * (1.0 + at::erf(u / std::sqrt(2.0)));
    x = x + attn + linear(act, w, p + "mlp.fc_out");
  }
  x = layer_norm(x, w, "transformer.ln_f", c.layer_norm_eps);
  return linear(x, w, "lm_head");
}

at::Tensor nll_from_logits(const at::Tensor& logits, const std::vector<int64_t>& ids) {
  const int64_t T = logits.size(0);
  at::Tensor lp = at::log_softmax(logits.narrow(0, 0, T - 1), -1);
  at::Tensor tgt = at::tensor(std::vector<int64_t>(ids.begin() + 1, ids.end()), at::kLong);
  return -lp.gather(1, tgt.unsqueeze(1)).squeeze(1);
}

}  // namespace lminf::testing
