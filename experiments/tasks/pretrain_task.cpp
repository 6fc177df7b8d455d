#include "experiments/tasks/pretrain_task.h"

#include <ATen/autocast_mode.h>
#include <torch/types.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/serialize.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <random>

#include <unistd.h>

#include "attention/registry.h"
#include "experiments/outputs/outputs.h"
#include "framework/io/atomic_file.h"
#include "framework/io/checkpoint.h"
#include "framework/core/error.h"
#include "framework/core/interrupt.h"
#include "framework/core/logging.h"
#include "framework/core/progress.h"
#include "experiments/data/token_data.h"
#include "models/model_config_json.h"
#include "models/model_families.h"

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

// GPT-2-style initialisation of the family's weight table: N(0, 0.02) matrices, residual output
// projections scaled by 1/sqrt(2 n_layer), norm weights 1, biases 0.
std::vector<std::pair<std::string, at::Tensor>> init_weights(const ModelConfig& c, uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  const double std = 0.02, out_std = 0.02 / std::sqrt(2.0 * double(c.n_layer));
  std::vector<std::pair<std::string, at::Tensor>> t;
  for (const WeightSpec& w : find_family(c.model_type, "task.model").weights(c)) {
    if (w.init == Init::kNorm || w.init == Init::kBias) {
      t.emplace_back(w.name, w.init == Init::kNorm ? at::ones(w.shape) : at::zeros(w.shape));
      continue;
    }
    const double sd = w.init == Init::kOutput ? out_std : std;
    t.emplace_back(w.name, at::normal(0.0, sd, w.shape, gen, at::TensorOptions().dtype(at::kFloat)));
  }
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
  write_file_atomic(tmp / "config.json", model_config_to_json(c).dump(2) + "\n");
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

namespace {

// One training run: the data, the model (fresh weights or the newest checkpoint), the optimizer, and
// the step loop with its logs, held-out evaluations and checkpoints; rank 0 writes.
class Trainer {
 public:
  Trainer(ProducerContext& ctx, const PretrainSpec& s);
  void train();   // steps start_step_ .. s.steps
  void finish();  // rank 0: final evaluation, output.dir/model and results.json

 private:
  void load_model();
  void make_optimizer();
  double step(int64_t step, double lr, double& grad_norm);  // the global batch's mean loss
  double evaluate();  // mean held-out NLL (NaN without task.eval_path)
  void save_checkpoint(int64_t done, double loss);
  void log_step(int64_t done, double lr, double grad_norm);

  ProducerContext& ctx_;
  const PretrainSpec& s_;
  const ModelConfig cfg_;
  const int rank_, world_;
  const int64_t local_batch_, tokens_per_step_;
  const fs::path ckpt_root_;
  std::unique_ptr<WindowSampler> sampler_;
  std::vector<std::vector<int64_t>> eval_docs_;
  fs::path resume_from_;
  int64_t start_step_ = 0;
  std::unique_ptr<CausalLM> model_;
  std::vector<torch::Tensor> decay_, no_decay_;
  std::unique_ptr<torch::optim::AdamW> opt_;
  std::unique_ptr<AttentionVariant> attention_;
  std::chrono::steady_clock::time_point t0_;
  double window_loss_ = 0, last_loss_ = std::nan(""), elapsed_ = 0;
  int64_t window_steps_ = 0;
};

Trainer::Trainer(ProducerContext& ctx, const PretrainSpec& s)
    : ctx_(ctx),
      s_(s),
      cfg_(model_config_of(s)),
      rank_(ctx.world.rank()),
      world_(ctx.world.size()),
      local_batch_(s.batch_size / world_),
      tokens_per_step_(s.batch_size * (s.context - 1)),
      ckpt_root_(ctx.out_dir / "checkpoints") {
  validate_model_config(cfg_, "task.model");
  const ExperimentSpec& es = ctx.spec;
  IdFileOptions io;
  io.vocab_size = cfg_.vocab_size;
  io.max_sequences = es.data.max_sequences;
  sampler_ = std::make_unique<WindowSampler>(read_id_file(es.data.path, io), s.context, cfg_.bos_token_id);
  if (sampler_->documents() == 0)
    fail(es.data.path, ": no document has the ", s.context - 1, " tokens one training window needs (lower task.context)");
  if (sampler_->skipped() > 0)
    log_warn("pretrain: ", sampler_->skipped(), " documents shorter than task.context - 1 tokens are not used");
  if (!s.eval_path.empty()) {
    IdFileOptions eo = io;
    eo.max_sequences = s.eval_sequences;
    eval_docs_ = read_id_file(s.eval_path, eo);
  }
  load_model();
  make_optimizer();
  AttentionSpec aspec;
  aspec.block_size = std::max<int64_t>(s.context, 1);
  aspec.key_block_size = std::max<int64_t>(s.context, 1);
  attention_ = make_attention(aspec);
}

// Initial weights (or the newest checkpoint), loaded through the same path as inference.
void Trainer::load_model() {
  resume_from_ = s_.resume ? newest_checkpoint(ckpt_root_) : fs::path();
  fs::path init_dir = resume_from_;
  const fs::path scratch = ctx_.out_dir / (".init-" + std::to_string(::getpid()) + "-" + std::to_string(rank_));
  if (resume_from_.empty()) {
    fs::create_directories(scratch);
    write_checkpoint(scratch, init_weights(cfg_, static_cast<uint64_t>(ctx_.spec.seed)), 1);
    init_dir = scratch;
  } else {
    auto state = nlohmann::json::parse(std::ifstream(resume_from_ / "state.json"));
    start_step_ = state["step"].get<int64_t>();
    log_info("pretrain: resuming from ", resume_from_.string(), " at step ", start_step_);
  }
  Checkpoint ckpt = Checkpoint::open(init_dir);
  model_ = lminf::load_model(ckpt, cfg_, LoadOptions{});
  fs::remove_all(scratch);
}

void Trainer::make_optimizer() {
  for (auto& [name, t] : model_->named_parameters()) {
    t.set_requires_grad(true);
    (t.dim() >= 2 ? decay_ : no_decay_).push_back(t);
  }
  auto options = [&](double weight_decay) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(s_.lr).betas({s_.beta1, s_.beta2}).weight_decay(weight_decay));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay_, options(s_.weight_decay));
  groups.emplace_back(no_decay_, options(0.0));
  opt_ = std::make_unique<torch::optim::AdamW>(std::move(groups), torch::optim::AdamWOptions(s_.lr));
  if (!resume_from_.empty()) torch::load(*opt_, (resume_from_ / "optimizer.pt").string());
}

double Trainer::evaluate() {
  if (eval_docs_.empty()) return std::nan("");
  at::NoGradGuard ng;
  ForwardContext fctx{attention_.get(), nullptr};
  double sum = 0;
  int64_t n = 0;
  for (const auto& d : eval_docs_) {
    std::vector<int64_t> w = {cfg_.bos_token_id};
    w.insert(w.end(), d.begin(), d.begin() + std::min<int64_t>(static_cast<int64_t>(d.size()), s_.context - 1));
    if (w.size() < 2) continue;
    at::Tensor x = at::tensor(w, at::kLong).unsqueeze(0);
    const int64_t T = x.size(1);
    at::Tensor nll = model_->token_nll(model_->forward(x.narrow(1, 0, T - 1), nullptr, fctx), x.narrow(1, 1, T - 1));
    sum += nll.sum().item<double>();
    n += T - 1;
  }
  return n > 0 ? sum / static_cast<double>(n) : std::nan("");
}

double Trainer::step(int64_t step, double lr, double& grad_norm) {
  for (auto& g : opt_->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
  at::Tensor ids = at::empty({local_batch_, s_.context}, at::kLong);
  for (int64_t r = 0; r < local_batch_; ++r)
    ids[r].copy_(at::tensor(sampler_->window(static_cast<uint64_t>(ctx_.spec.seed), step, rank_ * local_batch_ + r), at::kLong));
  opt_->zero_grad();
  const bool autocast = s_.precision == "bfloat16_autocast";
  ForwardContext fctx{attention_.get(), nullptr};
  if (autocast) set_cpu_autocast(true);
  at::Tensor hidden = model_->forward(ids.narrow(1, 0, s_.context - 1), nullptr, fctx);
  at::Tensor nll = model_->token_nll(hidden, ids.narrow(1, 1, s_.context - 1));
  if (autocast) set_cpu_autocast(false);
  // Mean over the GLOBAL batch: each rank divides its sum by the global token count, gradients summed.
  at::Tensor loss = nll.sum() / static_cast<double>(tokens_per_step_);
  loss.backward();
  at::Tensor loss_sum = loss.detach().clone();
  if (world_ > 1) {
    for (auto& t : decay_) ctx_.world.all_reduce(t.mutable_grad(), ReduceOp::kSum);
    for (auto& t : no_decay_) ctx_.world.all_reduce(t.mutable_grad(), ReduceOp::kSum);
    ctx_.world.all_reduce(loss_sum, ReduceOp::kSum);
  }
  grad_norm = 0;
  if (s_.grad_clip > 0) {
    std::vector<torch::Tensor> all = decay_;
    all.insert(all.end(), no_decay_.begin(), no_decay_.end());
    grad_norm = torch::nn::utils::clip_grad_norm_(all, s_.grad_clip);
  }
  opt_->step();
  const double l = loss_sum.item<double>();
  if (!std::isfinite(l)) fail("pretrain: the loss became ", l, " at step ", step, " (lower task.lr or raise task.warmup)");
  return l;
}

void Trainer::log_step(int64_t done, double lr, double grad_norm) {
  last_loss_ = window_loss_ / static_cast<double>(window_steps_);
  const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  const double tok_s = static_cast<double>((done - start_step_) * tokens_per_step_) / el;
  const double eta = static_cast<double>(s_.steps - done) * tokens_per_step_ / std::max(1.0, tok_s);
  log_info("step ", done, "/", s_.steps, " loss ", last_loss_, " lr ", lr, " grad_norm ", grad_norm, " ",
           static_cast<int64_t>(tok_s), " tok/s elapsed ", Progress::format_duration(el), " eta ",
           Progress::format_duration(eta));
  window_loss_ = 0;
  window_steps_ = 0;
}

void Trainer::save_checkpoint(int64_t done, double loss) {
  char name[32];
  std::snprintf(name, sizeof name, "step_%07lld", static_cast<long long>(done));
  fs::create_directories(ckpt_root_);
  save_model_dir(ckpt_root_ / name, cfg_, *model_, [&](const fs::path& d) {
    torch::save(*opt_, (d / "optimizer.pt").string());
    write_file_atomic(d / "state.json", nlohmann::json{{"step", done}, {"loss", loss}}.dump() + "\n");
  });
  log_info("checkpoint ", (ckpt_root_ / name).string());
}

void Trainer::train() {
  log_info("pretrain: ", parameter_count(cfg_), " parameters, ", sampler_->documents(), " documents, context ", s_.context,
           ", global batch ", s_.batch_size, " (", local_batch_, " per rank x ", world_, "), steps ", start_step_, "..",
           s_.steps, ", precision ", s_.precision);
  t0_ = std::chrono::steady_clock::now();
  for (int64_t st = start_step_; st < s_.steps; ++st) {
    check_interrupt();  // SIGINT / SIGTERM: stop between steps (resume from the last checkpoint)
    const double lr = pretrain_lr(s_, st);
    double grad_norm = 0;
    const double l = step(st, lr, grad_norm);
    window_loss_ += l;
    ++window_steps_;
    const int64_t done = st + 1;
    if (done % s_.log_every == 0 || done == s_.steps) log_step(done, lr, grad_norm);
    if (s_.eval_every > 0 && done % s_.eval_every == 0 && done != s_.steps && ctx_.writer) {
      const double e = evaluate();
      log_info("step ", done, " held-out NLL ", e, " (ppl ", std::exp(e), ")");
    }
    if (s_.checkpoint_every > 0 && done % s_.checkpoint_every == 0 && done != s_.steps && ctx_.writer)
      save_checkpoint(done, l);
  }
  elapsed_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
}

void Trainer::finish() {
  if (!ctx_.writer) return;
  const double eval = evaluate();
  save_model_dir(ctx_.final_dir / "model", cfg_, *model_);
  const int64_t tokens = (s_.steps - start_step_) * tokens_per_step_;
  nlohmann::json res;
  res["task"] = "pretrain";
  res["parameters"] = parameter_count(cfg_);
  res["steps"] = s_.steps;
  res["resumed_from_step"] = start_step_;
  res["tokens"] = tokens;
  res["final_train_loss"] = last_loss_;
  res["eval_nll"] = std::isfinite(eval) ? nlohmann::json(eval) : nlohmann::json(nullptr);
  res["eval_ppl"] = std::isfinite(eval) ? nlohmann::json(std::exp(eval)) : nlohmann::json(nullptr);
  res["elapsed_s"] = elapsed_;
  res["tokens_per_s"] = elapsed_ > 0 ? static_cast<double>(tokens) / elapsed_ : 0.0;
  write_results_json(ctx_.final_dir / "results.json", res, ctx_.provenance);
  log_info("pretrain: model written to ", (ctx_.out_dir / "model").string(), "; held-out NLL ", eval);
}

}  // namespace

void PretrainTask::run_producer(ProducerContext& ctx) {
  Trainer trainer(ctx, spec_);
  trainer.train();
  trainer.finish();
}

}  // namespace lminf
