#include "experiments/tasks/pretrain_task.h"

#include <ATen/autocast_mode.h>
#include <torch/types.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/serialize.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>

#include <unistd.h>

#include "attention/registry.h"
#include "experiments/outputs/outputs.h"
#include "framework/io/atomic_file.h"
#include "framework/io/checkpoint.h"
#include "framework/core/error.h"
#include "framework/core/logging.h"
#include "framework/core/progress.h"
#include "experiments/data/token_data.h"
#include "models/families/llama.h"

namespace lminf {
namespace {

// CPU autocast on and off; libtorch 2.4 replaced the CPU-specific calls by per-device ones.
void set_cpu_autocast(bool on) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_enabled(at::kCPU, on);
  if (on) at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
#else
  at::autocast::set_cpu_enabled(on);
  if (on) at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
#endif
  if (!on) at::autocast::clear_cache();
}

}  // namespace

namespace fs = std::filesystem;

namespace {

ModelConfig model_config_of(const PretrainSpec& s) {
  ModelConfig c;
  c.model_type = "llama";
  c.vocab_size = s.model.vocab_size;
  c.hidden_size = s.model.hidden_size;
  c.intermediate_size = s.model.intermediate_size;
  c.n_layer = s.model.n_layer;
  c.n_head = s.model.n_head;
  c.n_head_kv = s.model.n_head_kv;
  c.head_dim = s.model.n_head > 0 ? s.model.hidden_size / s.model.n_head : 0;
  c.max_position_embeddings = s.context;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = s.model.rope_theta;
  c.tie_word_embeddings = s.model.tie_word_embeddings;
  c.bos_token_id = s.model.bos_token_id;
  c.eos_token_ids = {s.model.eos_token_id};
  c.torch_dtype = "float32";
  return c;
}

// GPT-2-style initialisation: N(0, 0.02) matrices, residual output projections scaled by
// 1/sqrt(2 n_layer), norm weights 1.
std::vector<std::pair<std::string, at::Tensor>> init_weights(const ModelConfig& c, uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  const double std = 0.02, out_std = 0.02 / std::sqrt(2.0 * double(c.n_layer));
  auto normal = [&](std::vector<int64_t> shape, double sd) {
    return at::normal(0.0, sd, shape, gen, at::TensorOptions().dtype(at::kFloat));
  };
  const int64_t h = c.hidden_size, D = c.head_dim, I = c.intermediate_size;
  std::vector<std::pair<std::string, at::Tensor>> t;
  t.emplace_back("model.embed_tokens.weight", normal({c.vocab_size, h}, std));
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    t.emplace_back(p + "input_layernorm.weight", at::ones({h}));
    t.emplace_back(p + "self_attn.q_proj.weight", normal({c.n_head * D, h}, std));
    t.emplace_back(p + "self_attn.k_proj.weight", normal({c.n_head_kv * D, h}, std));
    t.emplace_back(p + "self_attn.v_proj.weight", normal({c.n_head_kv * D, h}, std));
    t.emplace_back(p + "self_attn.o_proj.weight", normal({h, c.n_head * D}, out_std));
    t.emplace_back(p + "post_attention_layernorm.weight", at::ones({h}));
    t.emplace_back(p + "mlp.gate_proj.weight", normal({I, h}, std));
    t.emplace_back(p + "mlp.up_proj.weight", normal({I, h}, std));
    t.emplace_back(p + "mlp.down_proj.weight", normal({h, I}, out_std));
  }
  t.emplace_back("model.norm.weight", at::ones({h}));
  if (!c.tie_word_embeddings) t.emplace_back("lm_head.weight", normal({c.vocab_size, h}, std));
  return t;
}

// Writes a Hugging Face model folder atomically: files go to a temporary sibling folder, renamed
// over `dir` when complete.
void save_model_dir(const fs::path& dir, const ModelConfig& c, CausalLM& model,
                    const std::function<void(const fs::path&)>& extra = {}) {
  const fs::path tmp = dir.parent_path() / ("." + dir.filename().string() + ".tmp-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (auto& [name, t] : model.named_parameters()) tensors.emplace_back(name, t.detach().to(at::kFloat).contiguous());
  write_checkpoint(tmp, tensors, 1);
  write_file_atomic(tmp / "config.json", c.to_json().dump(2) + "\n");
  if (extra) extra(tmp);
  const fs::path old = dir.parent_path() / ("." + dir.filename().string() + ".old-" + std::to_string(::getpid()));
  if (fs::exists(dir)) fs::rename(dir, old);
  fs::rename(tmp, dir);
  fs::remove_all(old);
}

uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t z = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The training windows: documents long enough for one window, sampled uniformly over windows.
class WindowSampler {
 public:
  WindowSampler(std::vector<std::vector<int64_t>> docs, int64_t context, int64_t bos)
      : context_(context), bos_(bos) {
    for (auto& d : docs) {
      if (static_cast<int64_t>(d.size()) >= context - 1) {
        cum_.push_back((cum_.empty() ? 0 : cum_.back()) + static_cast<int64_t>(d.size()) - (context - 1) + 1);
        docs_.push_back(std::move(d));
      } else {
        ++skipped_;
      }
    }
  }
  int64_t documents() const { return static_cast<int64_t>(docs_.size()); }
  int64_t skipped() const { return skipped_; }
  // Row r of the global batch of `step`: [BOS] + context-1 tokens.
  std::vector<int64_t> window(uint64_t seed, int64_t step, int64_t row) const {
    std::mt19937_64 rng(mix(mix(seed, static_cast<uint64_t>(step)), static_cast<uint64_t>(row)));
    const int64_t pick = static_cast<int64_t>(rng() % static_cast<uint64_t>(cum_.back()));
    const size_t d = static_cast<size_t>(std::upper_bound(cum_.begin(), cum_.end(), pick) - cum_.begin());
    const int64_t offset = pick - (d == 0 ? 0 : cum_[d - 1]);
    std::vector<int64_t> w = {bos_};
    w.insert(w.end(), docs_[d].begin() + offset, docs_[d].begin() + offset + (context_ - 1));
    return w;
  }

 private:
  int64_t context_, bos_, skipped_ = 0;
  std::vector<std::vector<int64_t>> docs_;
  std::vector<int64_t> cum_;
};

fs::path newest_checkpoint(const fs::path& dir) {
  fs::path best;
  int64_t best_step = -1;
  if (!fs::exists(dir)) return best;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("step_", 0) != 0 || !fs::exists(e.path() / "state.json")) continue;
    const int64_t s = std::stoll(n.substr(5));
    if (s > best_step) {
      best_step = s;
      best = e.path();
    }
  }
  return best;
}

}  // namespace

double pretrain_lr(const PretrainSpec& s, int64_t step) {
  if (s.warmup > 0 && step < s.warmup) return s.lr * static_cast<double>(step + 1) / static_cast<double>(s.warmup);
  const double span = static_cast<double>(std::max<int64_t>(1, s.steps - s.warmup));
  const double progress = std::min(1.0, static_cast<double>(step - s.warmup) / span);
  return s.min_lr + 0.5 * (s.lr - s.min_lr) * (1.0 + std::cos(M_PI * progress));
}

std::vector<std::string> PretrainTask::problems(const ExperimentSpec& spec, const ModelConfig&) const {
  std::vector<std::string> p;
  const auto& m = spec_.model;
  if (m.hidden_size % m.n_head != 0)
    p.push_back("task.model.hidden_size (" + std::to_string(m.hidden_size) + ") must be a multiple of num_attention_heads");
  else if ((m.hidden_size / m.n_head) % 2 != 0)
    p.push_back("task.model: head_dim = hidden_size / num_attention_heads must be even (rotary embeddings)");
  if (m.n_head % m.n_head_kv != 0) p.push_back("task.model.num_attention_heads must be a multiple of num_key_value_heads");
  if (m.bos_token_id >= m.vocab_size || m.eos_token_id >= m.vocab_size)
    p.push_back("task.model: bos_token_id and eos_token_id must be < vocab_size");
  if (spec.parallel.tensor_parallel != 1) p.push_back("task pretrain: parallel.tensor_parallel must be 1 (training is data-parallel only)");
  if (spec_.batch_size % spec.parallel.data_parallel != 0)
    p.push_back("task.batch_size (" + std::to_string(spec_.batch_size) + ") must be divisible by parallel.data_parallel (" +
                std::to_string(spec.parallel.data_parallel) + ")");
  if (spec.model.dtype != "float32")
    p.push_back("model.dtype: pretrain keeps weights in float32 (use task.precision: bfloat16_autocast for bfloat16 matmuls)");
  if (spec_.min_lr > spec_.lr) p.push_back("task.min_lr must not exceed task.lr");
  if (!spec_.eval_path.empty() && !fs::exists(spec_.eval_path)) p.push_back("task.eval_path: " + spec_.eval_path + " does not exist");
  return p;
}

void PretrainTask::run(RunContext&) { fail("task pretrain trains its own model (internal error: run() called)"); }

void PretrainTask::run_producer(ProducerContext& ctx) {
  const ExperimentSpec& es = ctx.spec;
  const PretrainSpec& s = spec_;
  const ModelConfig cfg = model_config_of(s);
  cfg.validate("task.model");
  const int rank = ctx.world.rank(), world = ctx.world.size();
  const int64_t local_batch = s.batch_size / world;

  IdFileOptions io;
  io.vocab_size = cfg.vocab_size;
  io.max_sequences = es.data.max_sequences;
  WindowSampler sampler(read_id_file(es.data.path, io), s.context, cfg.bos_token_id);
  if (sampler.documents() == 0)
    fail(es.data.path, ": no document has the ", s.context - 1, " tokens one training window needs (lower task.context)");
  if (sampler.skipped() > 0)
    log_warn("pretrain: ", sampler.skipped(), " documents shorter than task.context - 1 tokens are not used");
  std::vector<std::vector<int64_t>> eval_docs;
  if (!s.eval_path.empty()) {
    IdFileOptions eo = io;
    eo.max_sequences = s.eval_sequences;
    eval_docs = read_id_file(s.eval_path, eo);
  }

  // Initial weights (or the newest checkpoint), loaded through the same path as inference.
  const fs::path ckpt_root = ctx.out_dir / "checkpoints";
  fs::path resume_from = s.resume ? newest_checkpoint(ckpt_root) : fs::path();
  int64_t start_step = 0;
  fs::path init_dir = resume_from;
  const fs::path scratch = ctx.out_dir / (".init-" + std::to_string(::getpid()) + "-" + std::to_string(rank));
  if (resume_from.empty()) {
    fs::create_directories(scratch);
    write_checkpoint(scratch, init_weights(cfg, static_cast<uint64_t>(es.seed)), 1);
    init_dir = scratch;
  } else {
    auto state = nlohmann::json::parse(std::ifstream(resume_from / "state.json"));
    start_step = state["step"].get<int64_t>();
    log_info("pretrain: resuming from ", resume_from.string(), " at step ", start_step);
  }
  Checkpoint ckpt = Checkpoint::open(init_dir);
  LlamaModel model(ckpt, cfg, LoadOptions{});
  fs::remove_all(scratch);

  std::vector<torch::Tensor> decay, no_decay;
  for (auto& [name, t] : model.named_parameters()) {
    t.set_requires_grad(true);
    (t.dim() >= 2 ? decay : no_decay).push_back(t);
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                 torch::optim::AdamWOptions(s.lr).betas({s.beta1, s.beta2}).weight_decay(s.weight_decay)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                    torch::optim::AdamWOptions(s.lr).betas({s.beta1, s.beta2}).weight_decay(0.0)));
  torch::optim::AdamW opt(std::move(groups), torch::optim::AdamWOptions(s.lr));
  if (!resume_from.empty()) torch::load(opt, (resume_from / "optimizer.pt").string());

  AttentionSpec aspec;
  aspec.block_size = std::max<int64_t>(s.context, 1);
  aspec.key_block_size = std::max<int64_t>(s.context, 1);
  auto attention = make_attention(aspec);
  ForwardContext fctx{attention.get(), nullptr};
  const bool autocast = s.precision == "bfloat16_autocast";

  auto evaluate = [&]() -> double {
    if (eval_docs.empty()) return std::nan("");
    at::NoGradGuard ng;
    double sum = 0;
    int64_t n = 0;
    for (const auto& d : eval_docs) {
      std::vector<int64_t> w = {cfg.bos_token_id};
      w.insert(w.end(), d.begin(), d.begin() + std::min<int64_t>(static_cast<int64_t>(d.size()), s.context - 1));
      if (w.size() < 2) continue;
      at::Tensor x = at::tensor(w, at::kLong).unsqueeze(0);
      const int64_t T = x.size(1);
      at::Tensor nll = model.token_nll(model.forward(x.narrow(1, 0, T - 1), nullptr, fctx), x.narrow(1, 1, T - 1));
      sum += nll.sum().item<double>();
      n += T - 1;
    }
    return n > 0 ? sum / static_cast<double>(n) : std::nan("");
  };

  const int64_t tokens_per_step = s.batch_size * (s.context - 1);
  log_info("pretrain: ", cfg.n_params(), " parameters, ", sampler.documents(), " documents, context ", s.context,
           ", global batch ", s.batch_size, " (", local_batch, " per rank x ", world, "), steps ", start_step, "..", s.steps,
           ", precision ", s.precision);
  const auto t0 = std::chrono::steady_clock::now();
  double window_loss = 0, last_loss = std::nan(""), last_eval = std::nan("");
  int64_t window_steps = 0;
  for (int64_t step = start_step; step < s.steps; ++step) {
    const double lr = pretrain_lr(s, step);
    for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    at::Tensor ids = at::empty({local_batch, s.context}, at::kLong);
    for (int64_t r = 0; r < local_batch; ++r)
      ids[r].copy_(at::tensor(sampler.window(static_cast<uint64_t>(es.seed), step, rank * local_batch + r), at::kLong));
    opt.zero_grad();
    if (autocast) set_cpu_autocast(true);
    at::Tensor hidden = model.forward(ids.narrow(1, 0, s.context - 1), nullptr, fctx);
    at::Tensor nll = model.token_nll(hidden, ids.narrow(1, 1, s.context - 1));
    if (autocast) set_cpu_autocast(false);
    // Mean over the GLOBAL batch: each rank divides its sum by the global token count, gradients summed.
    at::Tensor loss = nll.sum() / static_cast<double>(tokens_per_step);
    loss.backward();
    at::Tensor loss_sum = loss.detach().clone();
    if (world > 1) {
      for (auto& t : decay) ctx.world.all_reduce(t.mutable_grad(), ReduceOp::kSum);
      for (auto& t : no_decay) ctx.world.all_reduce(t.mutable_grad(), ReduceOp::kSum);
      ctx.world.all_reduce(loss_sum, ReduceOp::kSum);
    }
    double grad_norm = 0;
    if (s.grad_clip > 0) {
      std::vector<torch::Tensor> all = decay;
      all.insert(all.end(), no_decay.begin(), no_decay.end());
      grad_norm = torch::nn::utils::clip_grad_norm_(all, s.grad_clip);
    }
    opt.step();
    const double l = loss_sum.item<double>();
    if (!std::isfinite(l)) fail("pretrain: the loss became ", l, " at step ", step, " (lower task.lr or raise task.warmup)");
    window_loss += l;
    ++window_steps;
    const int64_t done = step + 1;
    if (done % s.log_every == 0 || done == s.steps) {
      last_loss = window_loss / static_cast<double>(window_steps);
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double tok_s = static_cast<double>((done - start_step) * tokens_per_step) / el;
      const double eta = static_cast<double>(s.steps - done) * tokens_per_step / std::max(1.0, tok_s);
      log_info("step ", done, "/", s.steps, " loss ", last_loss, " lr ", lr, " grad_norm ", grad_norm, " ",
               static_cast<int64_t>(tok_s), " tok/s elapsed ", Progress::format_duration(el), " eta ",
               Progress::format_duration(eta));
      window_loss = 0;
      window_steps = 0;
    }
    if (s.eval_every > 0 && done % s.eval_every == 0 && done != s.steps && ctx.writer) {
      last_eval = evaluate();
      log_info("step ", done, " held-out NLL ", last_eval, " (ppl ", std::exp(last_eval), ")");
    }
    if (s.checkpoint_every > 0 && done % s.checkpoint_every == 0 && done != s.steps && ctx.writer) {
      char name[32];
      std::snprintf(name, sizeof name, "step_%07lld", static_cast<long long>(done));
      fs::create_directories(ckpt_root);
      save_model_dir(ckpt_root / name, cfg, model, [&](const fs::path& d) {
        torch::save(opt, (d / "optimizer.pt").string());
        write_file_atomic(d / "state.json", nlohmann::json{{"step", done}, {"loss", l}}.dump() + "\n");
      });
      log_info("checkpoint ", (ckpt_root / name).string());
    }
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!ctx.writer) return;
  last_eval = evaluate();
  save_model_dir(ctx.out_dir / "model", cfg, model);
  nlohmann::json res;
  res["task"] = "pretrain";
  res["parameters"] = cfg.n_params();
  res["steps"] = s.steps;
  res["resumed_from_step"] = start_step;
  res["tokens"] = (s.steps - start_step) * tokens_per_step;
  res["final_train_loss"] = last_loss;
  res["eval_nll"] = std::isfinite(last_eval) ? nlohmann::json(last_eval) : nlohmann::json(nullptr);
  res["eval_ppl"] = std::isfinite(last_eval) ? nlohmann::json(std::exp(last_eval)) : nlohmann::json(nullptr);
  res["elapsed_s"] = elapsed;
  res["tokens_per_s"] = elapsed > 0 ? static_cast<double>((s.steps - start_step) * tokens_per_step) / elapsed : 0.0;
  write_results_json(ctx.out_dir / "results.json", res, ctx.provenance);
  log_info("pretrain: model written to ", (ctx.out_dir / "model").string(), "; held-out NLL ", last_eval);
}

}  // namespace lminf
