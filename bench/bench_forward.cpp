// Prefill throughput of the Llama forward (forward + per-token NLL, as the perplexity task runs it)
// for stories260k (when ../shared is present) and a random ~110M Llama, at 512 and 2048 tokens,
// float32 and bfloat16, 1 and 2 threads; and torch::mm's peak rate on this CPU in the same run, so
// the forward's achieved FLOP/s is reported as a fraction of it.
//   lminf_bench [--quick] [--shared DIR]
#include <ATen/ATen.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "attention/registry.h"
#include "framework/core/threads.h"
#include "models/causal_lm.h"
#include "models/model_config_json.h"
#include "models/random_checkpoint.h"

namespace fs = std::filesystem;
using namespace lminf;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Best-of-N GFLOP/s of an n x n x n matmul.
double mm_peak(at::ScalarType dt, int64_t n, int reps) {
  at::Tensor a = at::randn({n, n}).to(dt), b = at::randn({n, n}).to(dt);
  at::mm(a, b);  // warm-up
  double best = 0;
  for (int i = 0; i < reps; ++i) {
    const double t0 = now_s();
    at::Tensor c = at::mm(a, b);
    const double dt_s = now_s() - t0;
    best = std::max(best, 2.0 * n * n * n / dt_s / 1e9);
  }
  return best;
}

// Useful FLOPs of one prefill of T tokens: the linear layers, causal attention (QK^T and PV over the
// T(T+1)/2 visible pairs) and the LM head.
double forward_flops(const ModelConfig& c, int64_t T) {
  const double h = double(c.hidden_size), q = double(c.n_head * c.head_dim), kv = double(c.n_head_kv * c.head_dim);
  const double per_token_linear = 2.0 * (h * (q + 2 * kv) + q * h + 3.0 * h * double(c.intermediate_size));
  const double attn = 2.0 * 2.0 * (double(T) * double(T + 1) / 2.0) * q;
  const double head = 2.0 * h * double(c.vocab_size);
  return double(c.n_layer) * (per_token_linear * double(T) + attn) + head * double(T);
}

struct Row {
  std::string model, dtype;
  int64_t T;
  int threads;
  double tok_s, gflops, frac;
};

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  fs::path shared = fs::path(LMINF_SOURCE_DIR_BENCH) / ".." / "shared";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--shared" && i + 1 < argc) shared = argv[++i];
  }
  const fs::path tmp = fs::temp_directory_path() / ("lminf-bench-" + std::to_string(::getpid()));
  fs::create_directories(tmp);

  struct ModelCase {
    std::string name;
    fs::path dir;
  };
  std::vector<ModelCase> models;
  if (fs::exists(shared / "fixtures" / "stories260k" / "config.json"))
    models.push_back({"stories260k", shared / "fixtures" / "stories260k"});
  else
    std::printf("(stories260k skipped: %s absent)\n", (shared / "fixtures" / "stories260k").c_str());
  {
    ModelConfig c = llama_preset(quick ? "tiny" : "llama-110m");
    write_random_llama(tmp / "random", c, 0);
    models.push_back({quick ? "random-tiny" : "random-110m", tmp / "random"});
  }
  const std::vector<int64_t> lengths = quick ? std::vector<int64_t>{128} : std::vector<int64_t>{512, 2048};
  const std::vector<int> thread_counts = {1, 2};
  const std::vector<at::ScalarType> dtypes = {at::kFloat, at::kBFloat16};

  std::vector<Row> rows;
  for (int th : thread_counts) {
    set_compute_threads(th);
    const double peak32 = mm_peak(at::kFloat, quick ? 256 : 1024, quick ? 2 : 5);
    const double peak16 = mm_peak(at::kBFloat16, quick ? 256 : 1024, quick ? 2 : 5);
    std::printf("threads=%d  torch::mm peak (%s): float32 %.1f GFLOP/s, bfloat16 %.1f GFLOP/s\n", th,
                quick ? "256^3" : "1024^3", peak32, peak16);
    for (const auto& m : models) {
      ModelConfig cfg = load_model_config(m.dir);
      for (at::ScalarType dt : dtypes) {
        LoadOptions lo;
        lo.dtype = dt;
        auto model = load_model(m.dir, cfg, lo);
        auto attn = make_attention(AttentionSpec{});
        for (int64_t T : lengths) {
          at::Tensor ids = at::randint(3, cfg.vocab_size, {1, T + 1}, at::kLong);
          ForwardContext ctx{attn.get(), nullptr};
          auto run = [&] {
            at::Tensor h = model->forward(ids.narrow(1, 0, T), nullptr, ctx);
            return model->token_nll(h, ids.narrow(1, 1, T));
          };
          run();  // warm-up
          const int reps = quick ? 1 : (T >= 2048 ? 2 : 3);
          double best = 1e30;
          for (int r = 0; r < reps; ++r) {
            const double t0 = now_s();
            run();
            best = std::min(best, now_s() - t0);
          }
          const double gf = forward_flops(cfg, T) / best / 1e9;
          const double peak = dt == at::kFloat ? peak32 : peak16;
          rows.push_back({m.name, dtype_name(dt), T, th, double(T) / best, gf, gf / peak});
          std::printf("  %-12s %-9s T=%-5lld threads=%d  %9.0f tok/s  %7.1f GFLOP/s  %5.1f%% of mm peak\n",
                      m.name.c_str(), dtype_name(dt).c_str(), static_cast<long long>(T), th, double(T) / best, gf,
                      100.0 * gf / peak);
          std::fflush(stdout);
        }
      }
    }
  }
  std::printf("\n| model | dtype | tokens | threads | tokens/s | GFLOP/s | of mm peak |\n|---|---|---|---|---|---|---|\n");
  for (const auto& r : rows)
    std::printf("| %s | %s | %lld | %d | %.0f | %.1f | %.0f%% |\n", r.model.c_str(), r.dtype.c_str(),
                static_cast<long long>(r.T), r.threads, r.tok_s, r.gflops, 100.0 * r.frac);
  fs::remove_all(tmp);
  return 0;
}
