// Attention variants: time and peak memory of vanilla and lambda (L = 2048 and 4096, G = 10)
//   1. one attention layer with Llama-2-7B head shapes (32 heads x 128) at T = 4k .. 32k, with a
//      re-implementation of the original's block-pair kernel (spec section 2.2: a 2L-wide band of
//      which half is masked, [T, G + 2L] logits materialised, softmax in the run dtype) on the same
//      inputs, and optionally the original repository's own kernel through python3 (--original);
//   2. the whole ~110M random Llama, prefill;
//   3. decoding at a 32k context: tokens/s and KV-cache bytes against vanilla's, beside the paper's
//      2.7x speed-up and 7.5x memory saving.
// Figures only (ratios against baselines measured in the same run), never timed assertions.
//
//   lminf_bench_attention [--quick] [--lengths 4096,8192,16384,32768] [--model-lengths 4096,8192,16384]
//                         [--vanilla-max 16384] [--bf16-max 8192] [--orig-max 16384] [--heads 32] [--reps 1]
//                         [--threads 2]
//                         [--decode-context 32768] [--decode-steps 8] [--original PATH]
//
// Peak memory as bench/bench_common.h measures it.
#include <ATen/ATen.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "attention/registry.h"
#include "attention/variants/lambda.h"
#include "bench/bench_common.h"
#include "framework/core/threads.h"
#include "models/causal_lm.h"
#include "models/model_config_json.h"
#include "models/random_checkpoint.h"

namespace fs = std::filesystem;
using namespace lminf;
using namespace lminf::bench;

namespace {

AttentionSpec lambda_spec(int64_t L, int64_t G) {
  return AttentionSpec::parse("{variant: lambda, local_branch: " + std::to_string(L) +
                              ", global_branch: " + std::to_string(G) + "}");
}

// The original's long_seq mode (spec section 2.2), one head at a time (its head loop; on a whole
// layer at 32k the [T, G + 2L] logits of all heads would not fit here): blocks of L queries against
// the pair (previous block, own block), 2L columns of which about half are masked; G global columns;
// the [P, G + 2L] logits built whole; softmax in the run dtype.
// q_rot, k_rot: rotated at their positions; q_stat: rotated to D; k_stat: unrotated. [1, H, T, D].
at::Tensor original_style_lambda(const at::Tensor& q_rot, const at::Tensor& k_rot, const at::Tensor& q_stat,
                                 const at::Tensor& k_stat, const at::Tensor& v, int64_t L, int64_t G) {
  const int64_t H = q_rot.size(1), T = q_rot.size(2), D = q_rot.size(3);
  const int64_t nb = (T + L - 1) / L, P = nb * L, patch = P - T;
  // finfo(dtype).min, as the original masks with it
  const double min_value = q_rot.scalar_type() == at::kBFloat16 ? double(std::numeric_limits<c10::BFloat16>::lowest())
                                                                : double(std::numeric_limits<float>::lowest());
  auto blocks = [&](const at::Tensor& x) { return at::constant_pad_nd(x, {0, 0, 0, patch}).view({1, nb, L, D}); };
  auto pair = [&](const at::Tensor& xb) { return at::cat({at::roll(xb, 1, 1), xb}, 2); };  // [1, nb, 2L, D]
  at::Tensor r = at::arange(L, at::kLong).unsqueeze(1), c = at::arange(2 * L, at::kLong).unsqueeze(0);
  at::Tensor hidden = at::logical_not(at::logical_and(c - r >= 1, c - r <= L));  // [L, 2L]
  at::Tensor gi = at::arange(T, at::kLong).unsqueeze(1), gj = at::arange(std::min(G, T), at::kLong).unsqueeze(0);
  at::Tensor g_hidden = (gj - gi) >= -L + 1;  // inside the window: seen through the band
  std::vector<at::Tensor> outs;
  for (int64_t h = 0; h < H; ++h) {
    at::Tensor qr = q_rot.narrow(1, h, 1), kr = k_rot.narrow(1, h, 1), vh = v.narrow(1, h, 1);
    at::Tensor A = at::matmul(blocks(qr), pair(blocks(kr)).transpose(-1, -2));  // [1, nb, L, 2L]
    A.masked_fill_(hidden, min_value);
    A.select(1, 0).narrow(-1, 0, L).fill_(min_value);  // block 0 has no predecessor
    if (patch > 0) {
      A.select(1, nb - 1).narrow(-2, L - patch, patch).fill_(min_value);
      A.select(1, nb - 1).narrow(-1, 2 * L - patch, patch).fill_(min_value);
    }
    at::Tensor S =
        at::matmul(q_stat.narrow(1, h, 1), k_stat.narrow(1, h, 1).narrow(2, 0, std::min(G, T)).transpose(-1, -2));
    S.masked_fill_(g_hidden, min_value);
    S = at::constant_pad_nd(S, {0, 0, 0, patch});  // [1, 1, P, G]
    at::Tensor attn = at::cat({S.view({1, P, -1}), A.view({1, P, 2 * L})}, -1);
    attn.div_(std::sqrt(double(D))).clamp_min_(min_value);
    attn = at::softmax(attn, -1);
    const int64_t g = S.size(-1);
    at::Tensor out = at::matmul(attn.narrow(1, 0, T).narrow(-1, 0, g), vh.narrow(2, 0, g).view({1, g, D}));
    at::Tensor band = at::matmul(attn.narrow(-1, g, 2 * L).view({1, nb, L, 2 * L}), pair(blocks(vh)));
    outs.push_back((out + band.view({1, P, D}).narrow(1, 0, T)).unsqueeze(1));
  }
  return at::cat(outs, 1);
}

// The original repository's kernel through python3 on the same shapes; "" with the reason when it
// cannot run. Prints the seconds of the best of `reps` calls.
std::string run_original_python(const fs::path& checkout, int64_t H, int64_t T, int64_t D, int64_t L, int64_t G,
                                const std::string& dtype, int reps, int threads, double* seconds) {
  const fs::path script = fs::temp_directory_path() / ("lminf-orig-" + std::to_string(::getpid()) + ".py");
  // The module is loaded from its file (models/ has no __init__.py). Its object's softmax() takes no
  // dimension, and matmul(value) returns the output (and frees the score matrix), as in its callers.
  std::ofstream(script) << "import sys, time, math, importlib.util, os\n"
                           "import torch\n"
                           "spec = importlib.util.spec_from_file_location('lambda_attention', "
                           "os.path.join(sys.argv[1], 'models', 'lambda_attention.py'))\n"
                           "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
                           "lambda_matmul = mod.lambda_matmul\n"
                           "H, T, D, L, G, reps, threads = map(int, sys.argv[2:9]); dt = getattr(torch, sys.argv[9])\n"
                           "torch.set_num_threads(threads)\n"
                           "q, k, qs, ks, v = (torch.randn(1, H, T, D).to(dt) for _ in range(5))\n"
                           "best = 1e30\n"
                           "for _ in range(reps):\n"
                           "    t0 = time.time()\n"
                           "    for h in range(H):\n"
                           "        a = lambda_matmul(k[:, h], ks[:, h], q[:, h], qs[:, h], L, G)\n"
                           "        a = a / math.sqrt(D)\n"
                           "        a = a.softmax()\n"
                           "        o = a.matmul(v[:, h])\n"
                           "    best = min(best, time.time() - t0)\n"
                           "print('SECONDS', best)\n";
  std::ostringstream cmd;
  // Debian's python3-torch lives beside /usr/bin/python3 (another python3 may come first on PATH).
  const char* py = fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  cmd << py << " " << script << " " << checkout << " " << H << " " << T << " " << D << " " << L << " " << G << " "
      << reps << " " << threads << " " << dtype << " 2>&1";
  std::string output;
  if (FILE* p = ::popen(cmd.str().c_str(), "r")) {
    char buf[4096];
    while (std::fgets(buf, sizeof buf, p)) output += buf;
    ::pclose(p);
  }
  fs::remove(script);
  const auto pos = output.find("SECONDS ");
  if (pos == std::string::npos) return output.empty() ? "python3 gave no output" : output;
  *seconds = std::stod(output.substr(pos + 8));
  return "";
}

struct LayerRow {
  std::string dtype, kernel;
  int64_t T;
  Measure m;
};

// The command line (see the comment at the top).
struct Options {
  bool quick = false;
  std::vector<int64_t> lengths = {4096, 8192, 16384, 32768};
  std::vector<int64_t> model_lengths = {4096, 8192, 16384};
  std::vector<int64_t> windows = {2048, 4096};
  int64_t vanilla_max = 16384, bf16_max = 8192, orig_max = 16384, heads = 32, decode_context = 32768, decode_steps = 8;
  int reps = 1, threads = 2;
  fs::path original;
  static constexpr int64_t G = 10, D = 128;
};

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return option_value(argc, argv, i); };
    if (a == "--quick") o.quick = true;
    else if (a == "--lengths") o.lengths = parse_list(next());
    else if (a == "--model-lengths") o.model_lengths = parse_list(next());
    else if (a == "--vanilla-max") o.vanilla_max = std::stoll(next());
    else if (a == "--bf16-max") o.bf16_max = std::stoll(next());
    else if (a == "--orig-max") o.orig_max = std::stoll(next());
    else if (a == "--heads") o.heads = std::stoll(next());
    else if (a == "--reps") o.reps = std::stoi(next());
    else if (a == "--threads") o.threads = std::stoi(next());
    else if (a == "--decode-context") o.decode_context = std::stoll(next());
    else if (a == "--decode-steps") o.decode_steps = std::stoll(next());
    else if (a == "--original") o.original = next();
    else {
      std::fprintf(stderr, "unknown argument %s (see the comment at the top of bench/bench_attention.cpp)\n", a.c_str());
      std::exit(2);
    }
  }
  if (o.quick) {
    o.lengths = {512, 1024};
    o.model_lengths = {512};
    o.windows = {128};
    o.vanilla_max = o.bf16_max = o.orig_max = 1024;
    o.heads = 4;
    o.decode_context = 2048;
    o.decode_steps = 2;
  }
  return o;
}

// The original's algorithm at window L on the same inputs (rotations outside the timed region),
// checked against lambda at T <= 8192, and the original repository's kernel when --original is given.
void bench_original(const Options& o, const RotaryEmbedding& rope, const AttentionCall& call, const std::string& dname,
                    int64_t L, std::vector<LayerRow>& rows) {
  const int64_t T = call.q.size(2);
  at::Tensor pos = at::arange(T, at::kLong);
  at::Tensor q_rot = rope.rotate(call.q, pos, T), k_rot = rope.rotate(call.k, pos, T);
  at::Tensor q_stat = rope.rotate(call.q, at::full({1}, L, at::kLong), T);
  at::Tensor out;
  Measure m = measure([&] { out = original_style_lambda(q_rot, k_rot, q_stat, call.k, call.v, L, Options::G); }, o.reps);
  const std::string label = "orig-algorithm L=" + std::to_string(L);
  rows.push_back({dname, label, T, m});
  std::printf("  %-9s T=%-6s %-28s %9.3f s  %9.1f MiB", dname.c_str(), kib(T).c_str(), label.c_str(), m.seconds,
              m.peak_mib);
  if (T <= 8192) {  // the two implementations agree (a check of the re-implementation)
    auto attn = make_attention(lambda_spec(L, Options::G));
    const double diff = (attn->forward(call).to(at::kFloat) - out.to(at::kFloat)).abs().max().item<double>();
    std::printf("  (max |diff| vs lambda %.1e)", diff);
  }
  std::printf("\n");
  std::fflush(stdout);
  if (o.original.empty()) return;
  double sec = 0;
  const std::string why =
      run_original_python(o.original, o.heads, T, Options::D, L, Options::G, dname, o.reps, o.threads, &sec);
  if (!why.empty()) {
    std::printf("  original repository kernel skipped: %s\n", why.c_str());
    return;
  }
  rows.push_back({dname, "original repo L=" + std::to_string(L), T, Measure{sec, 0}});
  std::printf("  %-9s T=%-6s %-28s %9.3f s\n", dname.c_str(), kib(T).c_str(), ("original repo L=" + std::to_string(L)).c_str(),
              sec);
}

// 1. One attention layer: vanilla, lambda and the original's algorithm, float32 and bfloat16.
std::vector<LayerRow> bench_layer(const Options& o, const RotaryEmbedding& rope) {
  std::vector<LayerRow> rows;
  std::printf("\n## one layer: 1 x %lld heads x T x %lld\n", static_cast<long long>(o.heads),
              static_cast<long long>(Options::D));
  for (at::ScalarType dt : {at::kFloat, at::kBFloat16}) {
    const std::string dname = dt == at::kFloat ? "float32" : "bfloat16";
    for (int64_t T : o.lengths) {
      if (dt == at::kBFloat16 && T > o.bf16_max) continue;
      at::manual_seed(T);
      AttentionCall call;
      call.q = at::randn({1, o.heads, T, Options::D}).to(dt);
      call.k = at::randn({1, o.heads, T, Options::D}).to(dt);
      call.v = at::randn({1, o.heads, T, Options::D}).to(dt);
      call.rope = &rope;
      auto run_variant = [&](const std::string& label, const AttentionSpec& spec) {
        auto attn = make_attention(spec);
        Measure m = measure([&] { attn->forward(call); }, o.reps);
        rows.push_back({dname, label, T, m});
        std::printf("  %-9s T=%-6s %-28s %9.3f s  %9.1f MiB\n", dname.c_str(), kib(T).c_str(), label.c_str(), m.seconds,
                    m.peak_mib);
        std::fflush(stdout);
      };
      if (T <= o.vanilla_max) run_variant("vanilla", AttentionSpec{});
      for (int64_t L : o.windows) {
        if (L >= T) continue;
        run_variant("lambda L=" + std::to_string(L), lambda_spec(L, Options::G));
        if (T <= o.orig_max) bench_original(o, rope, call, dname, L, rows);
      }
    }
  }
  if (o.original.empty()) std::printf("  (original repository kernel skipped: no --original PATH given)\n");
  return rows;
}

// The layer table with the ratios against vanilla and the original's algorithm, then t(2T)/t(T).
void print_layer_table(const std::vector<LayerRow>& rows) {
  auto find = [&](const std::string& dt, const std::string& kernel, int64_t T) -> const Measure* {
    for (const auto& r : rows)
      if (r.dtype == dt && r.kernel == kernel && r.T == T) return &r.m;
    return nullptr;
  };
  auto faster = [](const Measure* base, const Measure& m) {
    if (!base) return std::string();
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2fx faster", base->seconds / m.seconds);
    return std::string(buf);
  };
  std::printf(
      "\n| dtype | T | kernel | time (s) | peak (MiB) | vs vanilla | vs orig-algorithm "
      "|\n|---|---|---|---|---|---|---|\n");
  for (const auto& r : rows) {
    const std::string vs_v = r.kernel != "vanilla" ? faster(find(r.dtype, "vanilla", r.T), r.m) : "";
    const std::string vs_o =
        r.kernel.rfind("lambda", 0) == 0 ? faster(find(r.dtype, "orig-algorithm" + r.kernel.substr(6), r.T), r.m) : "";
    std::printf("| %s | %s | %s | %.3f | %.1f | %s | %s |\n", r.dtype.c_str(), kib(r.T).c_str(), r.kernel.c_str(),
                r.m.seconds, r.m.peak_mib, vs_v.c_str(), vs_o.c_str());
  }
  std::printf("\nlinearity t(2T)/t(T):\n");
  for (const auto& r : rows) {
    const Measure* half = find(r.dtype, r.kernel, r.T / 2);
    if (half)
      std::printf("  %-9s %-28s t(%s)/t(%s) = %.2f\n", r.dtype.c_str(), r.kernel.c_str(), kib(r.T).c_str(),
                  kib(r.T / 2).c_str(), r.m.seconds / half->seconds);
  }
}

// 2. The whole random model, prefill of T tokens.
void bench_prefill(const Options& o, CausalLM& model, const ModelConfig& cfg) {
  std::printf("\n## random %s model (%lld parameters, float32), prefill of T tokens\n", o.quick ? "tiny" : "110M",
              static_cast<long long>(parameter_count(cfg)));
  std::printf("| T | variant | time (s) | tokens/s | peak (MiB) |\n|---|---|---|---|---|\n");
  for (int64_t T : o.model_lengths) {
    at::Tensor ids = at::randint(3, cfg.vocab_size, {1, T}, at::kLong);
    std::vector<std::pair<std::string, AttentionSpec>> vs;
    if (T <= o.vanilla_max) vs.push_back({"vanilla", AttentionSpec{}});
    for (int64_t L : o.windows)
      if (L < T) vs.push_back({"lambda L=" + std::to_string(L), lambda_spec(L, Options::G)});
    for (const auto& [label, spec] : vs) {
      auto attn = make_attention(spec);
      Measure m = measure([&] { model.forward(ids, nullptr, ForwardContext{attn.get(), nullptr}); }, o.reps);
      std::printf("| %s | %s | %.2f | %.0f | %.0f |\n", kib(T).c_str(), label.c_str(), m.seconds, double(T) / m.seconds,
                  m.peak_mib);
      std::fflush(stdout);
    }
  }
}

// Decoded tokens per second after a context of `context` tokens: the cache is filled with random
// pre-RoPE keys/values as a prefill would leave it (vanilla: all of them; lambda: the first G and
// last L). Returns {tokens/s, cache MiB}.
std::pair<double, double> decode_rate(const Options& o, CausalLM& model, const ModelConfig& cfg, const AttentionVariant& attn) {
  KVCache cache = model.new_cache(attn);
  const int64_t bound = attn.cache_policy()->max_size();
  const int64_t keep = bound < 0 ? o.decode_context : std::min(bound, o.decode_context);
  const int64_t Hkv = cfg.n_head_kv, hd = cfg.head_dim;
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    // Room for the decoded tokens up front, so the buffers never regrow while timed.
    cache.layer(l).append(at::randn({1, Hkv, keep + o.decode_steps, hd}), at::randn({1, Hkv, keep + o.decode_steps, hd}));
    cache.layer(l).keep_head_and_tail(keep, 0);
  }
  cache.advance(o.decode_context);
  at::Tensor tok = at::randint(3, cfg.vocab_size, {1, 1}, at::kLong);
  model.forward(tok, &cache, ForwardContext{&attn, nullptr});  // warm-up step (vanilla rotates its cache once)
  const double t0 = now_s();
  for (int64_t s = 1; s < o.decode_steps; ++s) model.forward(tok, &cache, ForwardContext{&attn, nullptr});
  const double rate = double(o.decode_steps - 1) / (now_s() - t0);
  // Every buffer the cache holds (vanilla's rotated keys included), as allocated.
  return {rate, double(cache.bytes()) / (1024.0 * 1024.0)};
}

// 3. Decoding at a long context, vanilla against lambda.
void bench_decode(const Options& o, CausalLM& model, const ModelConfig& cfg) {
  std::printf("\n## decoding after a %s-token context (random %s model, float32, %lld steps)\n",
              kib(o.decode_context).c_str(), o.quick ? "tiny" : "110M", static_cast<long long>(o.decode_steps));
  std::printf(
      "| variant | tokens/s | cache MiB | weights + cache MiB | speed-up | cache saving | memory saving |\n"
      "|---|---|---|---|---|---|---|\n");
  const double weights_mib = double(model.weight_bytes()) / (1024.0 * 1024.0);
  double van_tps = 0, van_cache = 0;
  std::vector<std::pair<std::string, AttentionSpec>> dvs = {{"vanilla", AttentionSpec{}}};
  for (int64_t L : o.windows) dvs.push_back({"lambda L=" + std::to_string(L), lambda_spec(L, Options::G)});
  for (const auto& [label, spec] : dvs) {
    auto attn = make_attention(spec);
    const auto [tps, cache_mib] = decode_rate(o, model, cfg, *attn);
    if (label == "vanilla") {
      van_tps = tps;
      van_cache = cache_mib;
    }
    std::printf("| %s | %.2f | %.1f | %.1f | %.2fx | %.1fx | %.2fx |\n", label.c_str(), tps, cache_mib,
                weights_mib + cache_mib, tps / van_tps, van_cache / cache_mib,
                (weights_mib + van_cache) / (weights_mib + cache_mib));
    std::fflush(stdout);
  }
  std::printf("(paper, Llama-2 on GPU: 2.7x decoding speed-up, 7.5x memory saving)\n");
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  large_buffers_from_mmap();
  set_compute_threads(o.threads);
  std::printf("attention benchmark: %d threads, %lld heads x %lld, G = %lld, best of %d\n", o.threads,
              static_cast<long long>(o.heads), static_cast<long long>(Options::D), static_cast<long long>(Options::G),
              o.reps);
  RotaryEmbedding rope(Options::D, 10000.0, 4096, RopeScaling{});
  print_layer_table(bench_layer(o, rope));

  const fs::path tmp = fs::temp_directory_path() / ("lminf-bench-attn-" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  ModelConfig cfg = llama_preset(o.quick ? "tiny" : "llama-110m");
  write_random_llama(tmp / "random", cfg, 0);
  cfg = load_model_config(tmp / "random");
  auto model = load_model(tmp / "random", cfg, LoadOptions{});
  bench_prefill(o, *model, cfg);
  bench_decode(o, *model, cfg);
  fs::remove_all(tmp);
  return 0;
}
