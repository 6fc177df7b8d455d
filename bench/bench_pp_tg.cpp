// llama-bench's two measures on an lminf model, so the two can run side by side on the same model
// (scripts/bench_llamacpp.sh; figures in docs/benchmarks.md):
//   pp N: one prefill of N tokens from an empty KV cache, logits of the last token;
//   tg N: N single-token decoding steps from an empty KV cache, logits at every step.
// Each test: one warm-up, then --reps timed runs; prints mean and standard deviation of tokens/s (as
// llama-bench does) and a line `RESULT <test> <dtype> <threads> <mean tok/s>` for scripts.
//   lminf_bench_pp_tg [--model DIR] [--dtype float32|bfloat16] [--threads N] [--pp 512,2048] [--tg 128]
//                     [--reps 3]
// Without --model: a random ~110M Llama (preset llama-110m), written to a temporary folder.
#include <ATen/ATen.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "attention/registry.h"
#include "bench/bench_common.h"
#include "framework/core/error.h"
#include "framework/core/linear.h"
#include "framework/core/threads.h"
#include "framework/transformer/kv_cache.h"
#include "models/causal_lm.h"
#include "models/model_config_json.h"
#include "models/random_checkpoint.h"

namespace fs = std::filesystem;
using namespace lminf;

namespace {

struct Stats {
  double mean = 0, sd = 0;
};

Stats stats(const std::vector<double>& v) {
  Stats s;
  for (double x : v) s.mean += x;
  s.mean /= double(v.size());
  for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(s.sd / double(v.size() - 1)) : 0.0;
  return s;
}

}  // namespace

int main(int argc, char** argv) try {
  fs::path model_dir;
  std::string dtype_name = "float32";
  int threads = 1, reps = 3;
  std::vector<int64_t> pp = {512}, tg = {128};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) fail("lminf_bench_pp_tg: ", a, " needs a value");
      return argv[++i];
    };
    if (a == "--model") model_dir = value();
    else if (a == "--dtype") dtype_name = value();
    else if (a == "--threads") threads = std::stoi(value());
    else if (a == "--pp") pp = lminf::bench::parse_list(value());
    else if (a == "--tg") tg = lminf::bench::parse_list(value());
    else if (a == "--reps") reps = std::max(1, std::stoi(value()));
    else fail("lminf_bench_pp_tg: unknown option ", a,
              " (options: --model DIR --dtype float32|bfloat16 --threads N --pp N,.. --tg N,.. --reps N)");
  }
  set_compute_threads(threads);
  const fs::path tmp = fs::temp_directory_path() / ("lminf-bench-pp-tg-" + std::to_string(::getpid()));
  if (model_dir.empty()) {
    write_random_llama(tmp / "random", llama_preset("llama-110m"), 0);
    model_dir = tmp / "random";
  }
  const ModelConfig cfg = load_model_config(model_dir);
  LoadOptions lo;
  lo.dtype = parse_dtype(dtype_name, "--dtype");
  auto model = load_model(model_dir, cfg, lo);
  auto attn = make_attention(AttentionSpec{});
  ForwardContext ctx{attn.get(), nullptr};
  std::printf("model %s  dtype %s  threads %d (BLAS threads %d, matrix-vector kernel %s)  reps %d\n",
              model_dir.c_str(), dtype_name.c_str(), compute_threads(), blas_threads(), matvec_kernel().c_str(),
              reps);
  at::manual_seed(0);

  auto run_pp = [&](int64_t n) {
    at::Tensor ids = at::randint(3, cfg.vocab_size, {1, n}, at::kLong);
    KVCache cache(cfg.n_layer, nullptr);
    at::Tensor h = model->forward(ids, &cache, ctx);
    model->logits(h.narrow(1, n - 1, 1));
  };
  auto run_tg = [&](int64_t n) {
    KVCache cache(cfg.n_layer, nullptr);
    at::Tensor id = at::randint(3, cfg.vocab_size, {1, 1}, at::kLong);
    for (int64_t i = 0; i < n; ++i) {
      at::Tensor z = model->logits(model->forward(id, &cache, ctx));
      id = z.argmax(-1).view({1, 1});  // the next input follows from the logits, as in generation
    }
  };
  auto measure = [&](const std::string& kind, int64_t n, const auto& fn) {
    at::NoGradGuard no_grad;
    fn(n);  // warm-up
    std::vector<double> rates;
    for (int r = 0; r < reps; ++r) {
      const double t0 = lminf::bench::now_s();
      fn(n);
      rates.push_back(double(n) / (lminf::bench::now_s() - t0));
    }
    const Stats s = stats(rates);
    std::printf("  %s%-6lld %8.2f +- %6.2f tok/s\n", kind.c_str(), static_cast<long long>(n), s.mean, s.sd);
    std::printf("RESULT %s%lld %s %d %.3f\n", kind.c_str(), static_cast<long long>(n), dtype_name.c_str(), threads,
                s.mean);
    std::fflush(stdout);
  };
  for (int64_t n : pp) measure("pp", n, run_pp);
  for (int64_t n : tg) measure("tg", n, run_tg);
  if (fs::exists(tmp)) fs::remove_all(tmp);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "lminf_bench_pp_tg: %s\n", e.what());
  return 1;
}
