#include "support/reference_llama.h"

#include <cmath>
#include <stdexcept>

namespace lminf::testing {

WeightMap to_map(const std::vector<std::pair<std::string, at::Tensor>>& named) {
  WeightMap m;
  for (const auto& [n, t] : named) m[n] = t.to(at::kDouble);
  return m;
}

namespace {
const at::Tensor& get(const WeightMap& w, const std::string& name) {
  auto it = w.find(name);
  if (it == w.end()) throw std::runtime_error("reference: missing " + name);
  return it->second;
}

at::Tensor rmsnorm(const at::Tensor& x, const at::Tensor& g, double eps) {
  return x / at::sqrt((x * x).mean(-1, true) + eps) * g;
}

// Rotates one head's vectors x [T, D] at positions 0..T-1 (pairs (i, i + D/2), angle pos * theta^(-2i/D)).
at::Tensor rope(const at::Tensor& x, double theta, double pos_scale) {
  const int64_t T = x.size(0), D = x.size(1), half = D / 2;
  at::Tensor out = x.clone();
  auto xa = x.accessor<double, 2>();
  auto oa = out.accessor<double, 2>();
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t i = 0; i < half; ++i) {
      // HF computes inv_freq in float32; mirror that rounding so float32 paths agree tightly.
      const float inv = static_cast<float>(1.0 / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(D)));
      const double ang = static_cast<double>(static_cast<float>(static_cast<float>(t / pos_scale) * inv));
      const double c = std::cos(ang), s = std::sin(ang);
      const double a = xa[t][i], b = xa[t][i + half];
      oa[t][i] = a * c - b * s;
      oa[t][i + half] = b * c + a * s;
    }
  }
  return out;
}
}  // namespace

at::Tensor reference_llama_logits(const WeightMap& w, const ModelConfig& c, const std::vector<int64_t>& ids) {
  const int64_t T = static_cast<int64_t>(ids.size()), D = c.head_dim, g = c.n_head / c.n_head_kv;
  const double pos_scale = c.rope_scaling.type == "linear" ? c.rope_scaling.factor : 1.0;
  if (c.rope_scaling.type != "default" && c.rope_scaling.type != "linear")
    throw std::runtime_error("reference: only default and linear rope");
  at::Tensor idt = at::tensor(ids, at::kLong);
  at::Tensor x = get(w, "model.embed_tokens.weight").index_select(0, idt);  // [T, h]
  at::Tensor causal = at::ones({T, T}, at::kDouble).tril();
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    at::Tensor h = rmsnorm(x, get(w, p + "input_layernorm.weight"), c.rms_norm_eps);
    auto proj = [&](const std::string& name) {
      at::Tensor y = at::matmul(h, get(w, p + name + ".weight").t());
      auto it = w.find(p + name + ".bias");
      if (it != w.end()) y = y + it->second;
      return y;
    };
    at::Tensor q = proj("self_attn.q_proj"), k = proj("self_attn.k_proj"), v = proj("self_attn.v_proj");
    std::vector<at::Tensor> heads;
    for (int64_t hd = 0; hd < c.n_head; ++hd) {
      const int64_t kvh = hd / g;
      at::Tensor qh = rope(q.narrow(1, hd * D, D).contiguous(), c.rope_theta, pos_scale);
      at::Tensor kh = rope(k.narrow(1, kvh * D, D).contiguous(), c.rope_theta, pos_scale);
      at::Tensor vh = v.narrow(1, kvh * D, D);
      at::Tensor s = at::matmul(qh, kh.t()) / std::sqrt(static_cast<double>(D));
      s = s.masked_fill(causal == 0, -INFINITY);
      heads.push_back(at::matmul(at::softmax(s, -1), vh));
    }
    at::Tensor a = at::cat(heads, 1);
    at::Tensor o = at::matmul(a, get(w, p + "self_attn.o_proj.weight").t());
    auto ob = w.find(p + "self_attn.o_proj.bias");
    if (ob != w.end()) o = o + ob->second;
    x = x + o;
    h = rmsnorm(x, get(w, p + "post_attention_layernorm.weight"), c.rms_norm_eps);
    auto mlp = [&](const at::Tensor& in, const std::string& name) {
      at::Tensor y = at::matmul(in, get(w, p + name + ".weight").t());
      auto it = w.find(p + name + ".bias");
      return it != w.end() ? y + it->second : y;
    };
    at::Tensor gate = mlp(h, "mlp.gate_proj");
    at::Tensor up = mlp(h, "mlp.up_proj");
    at::Tensor act = gate / (1.0 + at::exp(-gate)) * up;
    x = x + mlp(act, "mlp.down_proj");
  }
  x = rmsnorm(x, get(w, "model.norm.weight"), c.rms_norm_eps);
  auto head = w.find("lm_head.weight");
  const at::Tensor& hw = head != w.end() ? head->second : get(w, "model.embed_tokens.weight");
  return at::matmul(x, hw.t());
}

at::Tensor reference_llama_nll(const WeightMap& w, const ModelConfig& c, const std::vector<int64_t>& ids) {
  at::Tensor logits = reference_llama_logits(w, c, ids);
  const int64_t T = logits.size(0);
  at::Tensor lp = at::log_softmax(logits.narrow(0, 0, T - 1), -1);
  at::Tensor tgt = at::tensor(std::vector<int64_t>(ids.begin() + 1, ids.end()), at::kLong);
  return -lp.gather(1, tgt.unsqueeze(1)).squeeze(1);
}

}  // namespace lminf::testing
