// Every attention configuration of bench/variants.yaml (each registered variant at the papers'
// Llama-2-7B settings) on one attention layer with Llama-2-7B heads (32 x 128, batch 1), against
// lambda measured in the same run:
//   prefill of T tokens (T = 8k and 16k): time and peak memory;
//   decoding after a T-token context: tokens/s through the variant's own cache policy, and the bytes
//   that cache holds for the layer.
// Figures only, never timed assertions.
//
//   lminf_bench_variants [--quick] [--lengths 8192,16384] [--heads 32] [--kv-heads 32] [--dtype float32|bfloat16]
//                        [--reps 1] [--threads 2] [--decode-steps 16] [--sections bench/variants.yaml]
//                        [--only label,label]
//
// Peak memory as bench/bench_common.h measures it. Decoding continues from the prefill's keys and
// values, trimmed by the configuration's cache policy (the variant's own, or attention.cache's).
#include <ATen/ATen.h>

#include <cstdio>
#include <algorithm>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "attention/registry.h"
#include "bench/bench_common.h"
#include "framework/core/threads.h"
#include "framework/transformer/kv_cache.h"
#include "framework/transformer/rope.h"

using namespace lminf;
using namespace lminf::bench;

namespace {

struct Options {
  bool quick = false;
  std::vector<int64_t> lengths = {8192, 16384};
  int64_t heads = 32, kv_heads = 32, decode_steps = 16;
  at::ScalarType dtype = at::kFloat;
  int reps = 1, threads = 2;
  std::string sections = LMINF_BENCH_DIR "/variants.yaml";
  std::vector<std::string> only;
  static constexpr int64_t D = 128;
};

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return option_value(argc, argv, i); };
    if (a == "--quick") o.quick = true;
    else if (a == "--lengths") o.lengths = parse_list(next());
    else if (a == "--heads") o.heads = std::stoll(next());
    else if (a == "--kv-heads") o.kv_heads = std::stoll(next());
    else if (a == "--dtype") o.dtype = next() == "bfloat16" ? at::kBFloat16 : at::kFloat;
    else if (a == "--reps") o.reps = std::stoi(next());
    else if (a == "--threads") o.threads = std::stoi(next());
    else if (a == "--decode-steps") o.decode_steps = std::stoll(next());
    else if (a == "--sections") o.sections = next();
    else if (a == "--only") {
      std::stringstream ss(next());
      for (std::string s; std::getline(ss, s, ',');) o.only.push_back(s);
    } else {
      std::fprintf(stderr, "unknown argument %s (see the comment at the top of bench/bench_variants.cpp)\n", a.c_str());
      std::exit(2);
    }
  }
  if (o.quick) {  // a smoke run: tiny heads, windows of the sections scaled down by the lengths
    o.lengths = {512};
    o.heads = o.kv_heads = 2;
    o.decode_steps = 2;
  }
  return o;
}

struct Config {
  std::string label;
  AttentionSpec spec;
};

// The sections of the file, lambda first; the registered variants without one are named on stderr.
std::vector<Config> read_configs(const Options& o) {
  const YAML::Node root = YAML::LoadFile(o.sections);
  std::vector<Config> out;
  std::map<std::string, bool> covered;
  for (auto it = root.begin(); it != root.end(); ++it) {
    Config c{it->first.as<std::string>(), AttentionSpec::parse(YAML::Dump(it->second))};
    covered[c.spec.variant] = true;
    if (!o.only.empty() && c.label != "lambda" &&
        std::find(o.only.begin(), o.only.end(), c.label) == o.only.end())
      continue;
    if (c.label == "lambda") out.insert(out.begin(), c);
    else out.push_back(c);
  }
  if (out.empty() || out.front().label != "lambda") {
    std::fprintf(stderr, "%s: no `lambda` entry (the baseline)\n", o.sections.c_str());
    std::exit(2);
  }
  for (const auto& name : attention_variant_names())
    if (!covered.count(name)) std::fprintf(stderr, "note: variant %s has no entry in %s\n", name.c_str(), o.sections.c_str());
  return out;
}

at::Tensor random_heads(const Options& o, int64_t heads, int64_t T) {
  return at::randn({1, heads, T, Options::D}).to(o.dtype);
}

struct Row {
  std::string label;
  int64_t T = 0;
  Measure prefill;
  double decode_tps = 0, cache_mib = 0;
};

// The prefill call of T tokens; with a policy that asks for the attention mass (H2O, SnapKV), the
// call computes it, as in a model layer, and `mass` receives it for the decode part.
Measure time_prefill(const Options& o, const AttentionVariant& attn, const RotaryEmbedding& rope, int64_t T,
                     at::Tensor* k_out, at::Tensor* v_out, KeyMass* mass) {
  at::manual_seed(T);
  AttentionCall call;
  call.q = random_heads(o, o.heads, T);
  call.k = *k_out = random_heads(o, o.kv_heads, T);
  call.v = *v_out = random_heads(o, o.kv_heads, T);
  call.rope = &rope;
  mass->rows = attn.cache_policy()->mass_rows(T, T);
  if (mass->rows > 0) call.key_mass = mass;
  return measure([&] { attn.forward(call); }, o.reps);
}

// {tokens/s, MiB the layer's cache holds} for decode steps after the prefill's context: the cache
// holds its keys and values, trimmed by the policy (with the prefill's mass), and each step appends
// one token, attends (asking for the mass when the policy does) and trims, as a model layer does.
std::pair<double, double> time_decode(const Options& o, const AttentionVariant& attn, const RotaryEmbedding& rope,
                                      const at::Tensor& k, const at::Tensor& v, const KeyMass& prefill_mass) {
  const int64_t T = k.size(2);
  LayerCache cache;
  const auto policy = attn.cache_policy();
  cache.append(k, v);
  policy->trim(cache, prefill_mass);
  auto step = [&](int64_t s) {
    cache.append(random_heads(o, o.kv_heads, 1), random_heads(o, o.kv_heads, 1));
    AttentionCall call;
    call.q = random_heads(o, o.heads, 1);
    call.k = cache.keys();
    call.v = cache.values();
    call.q_offset = cache.size() - 1;
    call.abs_q_start = T + s;
    call.rope = &rope;
    KeyMass mass;
    mass.rows = policy->mass_rows(1, cache.size());
    if (mass.rows > 0) call.key_mass = &mass;
    attn.forward(call);
    policy->trim(cache, mass);
  };
  step(0);  // warm-up (and the buffers' growth)
  const double t0 = now_s();
  for (int64_t s = 1; s < o.decode_steps; ++s) step(s);
  const double tps = double(o.decode_steps - 1) / (now_s() - t0);
  const double bytes = double(cache.keys().numel() + cache.values().numel()) * double(at::elementSize(o.dtype));
  return {tps, bytes / (1024.0 * 1024.0)};
}

void print_table(const std::vector<Row>& rows) {
  std::printf(
      "\n| config | T | prefill (s) | vs lambda | peak (MiB) | decode tokens/s | vs lambda | layer cache (MiB) |\n"
      "|---|---|---|---|---|---|---|---|\n");
  for (const auto& r : rows) {
    const Row* base = nullptr;
    for (const auto& b : rows)
      if (b.label == "lambda" && b.T == r.T) base = &b;
    std::printf("| %s | %s | %.3f | %.2fx | %.1f | %.1f | %.2fx | %.1f |\n", r.label.c_str(), kib(r.T).c_str(),
                r.prefill.seconds, r.prefill.seconds / base->prefill.seconds, r.prefill.peak_mib, r.decode_tps,
                r.decode_tps / base->decode_tps, r.cache_mib);
  }
  std::printf("(vs lambda: prefill time ratio (> 1: slower than lambda); decode rate ratio (> 1: faster))\n");
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  large_buffers_from_mmap();
  set_compute_threads(o.threads);
  std::printf("attention variants benchmark: %d threads, 1 x %lld heads (%lld KV) x %lld, %s, best of %d\n",
              o.threads, static_cast<long long>(o.heads), static_cast<long long>(o.kv_heads),
              static_cast<long long>(Options::D), o.dtype == at::kFloat ? "float32" : "bfloat16", o.reps);
  RotaryEmbedding rope(Options::D, 10000.0, 4096, RopeScaling{});
  std::vector<Row> rows;
  for (const Config& c : read_configs(o)) {
    auto attn = make_attention(c.spec);
    for (int64_t T : o.lengths) {
      Row r{c.label, T};
      at::Tensor k, v;
      KeyMass mass;
      r.prefill = time_prefill(o, *attn, rope, T, &k, &v, &mass);
      std::tie(r.decode_tps, r.cache_mib) = time_decode(o, *attn, rope, k, v, mass);
      std::printf("  %-16s T=%-5s prefill %8.3f s  %8.1f MiB  decode %8.1f tokens/s  cache %7.1f MiB\n",
                  c.label.c_str(), kib(T).c_str(), r.prefill.seconds, r.prefill.peak_mib, r.decode_tps, r.cache_mib);
      std::fflush(stdout);
      rows.push_back(r);
    }
  }
  print_table(rows);
  return 0;
}
