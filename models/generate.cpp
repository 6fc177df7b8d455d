#include "models/generate.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "framework/core/error.h"

namespace lminf {

int64_t pick_token(const at::Tensor& logits, const GenerateOptions& opts, uint64_t& rng_state) {
  at::Tensor z = logits.to(at::kCPU).to(at::kDouble).contiguous();
  if (!opts.do_sample) return z.argmax().item<int64_t>();
  if (opts.temperature <= 0) fail("generation: temperature must be > 0 when sampling");
  const int64_t V = z.numel();
  const double* zp = z.data_ptr<double>();
  std::vector<int64_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return zp[a] > zp[b]; });
  size_t keep = order.size();
  if (opts.top_k > 0) keep = std::min(keep, static_cast<size_t>(opts.top_k));
  std::vector<double> p(keep);
  const double zmax = zp[order[0]];
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) {
    p[i] = std::exp((zp[order[i]] - zmax) / opts.temperature);
    sum += p[i];
  }
  for (auto& x : p) x /= sum;
  if (opts.top_p < 1.0) {
    // Smallest prefix (by descending probability) whose mass reaches top_p.
    double cum = 0;
    size_t n = 0;
    while (n < keep) {
      cum += p[n++];
      if (cum >= opts.top_p) break;
    }
    keep = n;
    p.resize(keep);
    double s2 = std::accumulate(p.begin(), p.end(), 0.0);
    for (auto& x : p) x /= s2;
  }
  std::mt19937_64 rng(rng_state);
  rng_state = rng();
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  double cum = 0;
  for (size_t i = 0; i < keep; ++i) {
    cum += p[i];
    if (u < cum) return order[i];
  }
  return order[keep - 1];
}

std::vector<int64_t> generate(CausalLM& model, const AttentionVariant& attention, const std::vector<int64_t>& prompt,
                              const GenerateOptions& opts, const ObserverSet* observers) {
  if (prompt.empty()) fail("generation: the prompt is empty (start with at least the BOS token)");
  KVCache cache = model.new_cache(attention);
  ForwardContext ctx{&attention, observers};
  at::Tensor ids = at::tensor(prompt, at::kLong).unsqueeze(0);
  at::Tensor hidden = model.forward(ids, &cache, ctx);
  uint64_t rng_state = opts.seed;
  std::vector<int64_t> out;
  for (int64_t step = 0; step < opts.max_new_tokens; ++step) {
    at::Tensor last = hidden.narrow(1, hidden.size(1) - 1, 1);
    at::Tensor logits = model.logits(last).reshape({-1});
    const int64_t next = pick_token(logits, opts, rng_state);
    out.push_back(next);
    if (std::find(opts.stop_tokens.begin(), opts.stop_tokens.end(), next) != opts.stop_tokens.end()) break;
    if (opts.stop_when && opts.stop_when(out)) break;
    if (step + 1 == opts.max_new_tokens) break;
    hidden = model.forward(at::full({1, 1}, next, at::kLong), &cache, ctx);
  }
  return out;
}

}  // namespace lminf
