#include "experiments/tasks/streaming_perplexity_task.h"

#include <algorithm>
#include <cstdio>
#include <memory>

#include <sys/resource.h>

#include "attention/registry.h"
#include "experiments/outputs/outputs.h"
#include "experiments/outputs/resume_config.h"
#include "experiments/tasks/stream_state.h"
#include "framework/core/error.h"
#include "framework/core/format.h"
#include "framework/core/logging.h"
#include "framework/core/process_memory.h"
#include "framework/core/progress.h"

namespace lminf {
namespace fs = std::filesystem;

namespace {

constexpr const char* kNllFile = "token_nll.h5";             // a final output, written at the end
constexpr const char* kLogFile = "token_nll.partial.f32";   // the NLLs so far: resume state (NllLog)
constexpr const char* kStateFile = "stream_state.h5";
constexpr int64_t kStateVersion = 1;
constexpr double kMiB = 1024.0 * 1024.0;

// CPU time of this process so far (user + system, all threads), seconds.
double process_cpu_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + 1e-6 * static_cast<double>(t.tv_usec); };
  return s(u.ru_utime) + s(u.ru_stime);
}

// One invocation of the task: the stream, the cache, the files of output.dir and where the run stands.
// Rank 0 (ctx.writer) decides the start point and writes; every rank feeds the stream (tensor parallelism).
class StreamingRun {
 public:
  StreamingRun(RunContext& ctx, const StreamingPerplexitySpec& spec, const YAML::Node& resolved);
  void start();    // from nothing, or from the state of an earlier run with the same configuration
  void loop();     // chunk by chunk until the limit or the stream's end, flushing every flush_every
  void summary();  // the last checkpoint, the table, the log line

 private:
  StreamPoint read_start();  // rank 0
  void check_state_file(const H5Reader& st) const;
  void restore(const StreamPoint& from);
  void open_outputs(bool resume);
  void convert_legacy_nll(int64_t tokens);
  void write_state();
  void write_results(bool complete);
  void write_token_nll();
  void checkpoint(bool complete);

  RunContext& ctx_;
  const StreamingPerplexitySpec& spec_;
  const fs::path nll_path_, log_path_, state_path_;
  const std::string resume_config_, run_hash_;
  TokenStream stream_;
  KVCache cache_;
  StreamPoint at_;  // tokens done, next input, ended (cursor: the stream's, at each save)
  RunningNll acc_;
  std::unique_ptr<NllLog> log_;  // rank 0
  std::unique_ptr<Progress> progress_;
  nlohmann::json memory_ = nlohmann::json::array();
  int64_t first_done_ = 0, last_flush_ = 0;
  double cpu_start_ = 0;
};

TokenStreamOptions stream_options(const StreamingPerplexitySpec& spec, int64_t seed) {
  TokenStreamOptions so;
  so.shuffle = spec.shuffle;
  so.repeat = spec.repeat;
  so.seed = static_cast<uint64_t>(seed);
  so.eos_separator = spec.separator == "eos";
  return so;
}

StreamingRun::StreamingRun(RunContext& ctx, const StreamingPerplexitySpec& spec, const YAML::Node& resolved)
    : ctx_(ctx),
      spec_(spec),
      nll_path_(ctx.final_dir / kNllFile),
      log_path_(ctx.out_dir / kLogFile),
      state_path_(ctx.out_dir / kStateFile),
      resume_config_(streaming_resume_config(ctx.spec, resolved)),
      run_hash_(config_hash(resume_config_)),
      stream_(ctx.spec.data, ctx.model_config, stream_options(spec, ctx.spec.seed)),
      cache_(ctx.model.new_cache(ctx.attention)) {
  acc_.segment = spec_.segment;
  if (cache_.policy().max_size() >= 0) return;
  const ModelConfig& m = ctx.model_config;
  const int64_t per_token = m.n_layer * 2 * m.n_head_kv * m.head_dim *
                            static_cast<int64_t>(c10::elementSize(ctx.model.dtype())) / ctx.world.size();
  log_warn("streaming_perplexity: attention.variant ", ctx.spec.attention.variant,
           " keeps every token in its KV cache: memory grows by ", per_token, " bytes per token, ",
           per_token * spec_.max_tokens / kMiB, " MiB per rank at task.max_tokens=", spec_.max_tokens);
}

void StreamingRun::check_state_file(const H5Reader& st) const {
  if (!st.has_attr("/", "schema") || st.attr_string("/", "schema") != "lminf.stream_state")
    fail("output.dir: ", state_path_.string(), " is not a streaming_perplexity state file (choose another "
         "output.dir, or set output.overwrite: true to replace it)");
  if (st.attr_int("/", "schema_version") != kStateVersion)
    fail("output.dir: ", state_path_.string(), " has state schema version ", st.attr_int("/", "schema_version"),
         "; this lminf reads version ", kStateVersion, " (set output.overwrite: true to start over)");
  if (st.attr_string("/", "config_hash") != run_hash_)
    fail("output.dir: ", ctx_.out_dir.string(), " holds a partial streaming run with another configuration, so it "
         "cannot be resumed; the keys that differ:", config_differences(st.attr_string("/", "resume_config"),
         resume_config_), "\n  (restore them, choose another output.dir, or set output.overwrite: true to start over)");
}

StreamPoint StreamingRun::read_start() {
  StreamPoint start;
  if (ctx_.spec.output.overwrite) {
    // The earlier run's token_nll.h5 and results.json stay until this run completes (output_stage.h).
    fs::remove(state_path_);
    fs::remove(log_path_);
    return start;
  }
  if (!fs::exists(state_path_)) {
    for (const fs::path& p : {ctx_.out_dir / kNllFile, ctx_.out_dir / "results.json"})
      if (fs::exists(p))
        fail("output.dir: ", p.string(), " exists without ", kStateFile, " (an earlier run of another task, or a "
             "deleted state); choose another output.dir, or set output.overwrite: true to replace it");
    return start;
  }
  H5Reader st(state_path_);
  check_state_file(st);
  const int64_t tokens = st.attr_int("/", "tokens");
  if (tokens == 0) return start;
  if (!fs::exists(log_path_)) convert_legacy_nll(tokens);
  start = StreamPoint::load(st, state_path_.string());
  acc_.load(st);
  if (acc_.tokens != start.tokens)
    fail(state_path_.string(), ": running sums over ", acc_.tokens, " tokens, state at ", start.tokens,
         " (a damaged state; set output.overwrite: true to start over)");
  return start;
}

// A state written by an lminf that appended token_nll.h5 in place: its first `tokens` rows become the log.
void StreamingRun::convert_legacy_nll(int64_t tokens) {
  const fs::path legacy = ctx_.out_dir / kNllFile;
  if (!fs::exists(legacy))
    fail("output.dir: ", state_path_.string(), " records ", tokens, " tokens but ", log_path_.string(),
         " is missing (set output.overwrite: true to start over)");
  H5Reader nll(legacy);
  if (!nll.has_attr("/", "config_hash") || nll.attr_string("/", "config_hash") != run_hash_)
    fail("output.dir: ", legacy.string(), " does not belong to ", state_path_.string(),
         " (set output.overwrite: true to start over)");
  at::Tensor rows = nll.read("token_nll");
  if (rows.dim() != 1)
    fail(legacy.string(), ": dataset 'token_nll' has shape ", shape_str(rows.sizes()),
         ", expected one NLL per row (the file was changed; set output.overwrite: true to start over)");
  if (rows.size(0) < tokens)
    fail(legacy.string(), " holds ", rows.size(0), " NLLs but its state records ", tokens,
         " (the file was changed; set output.overwrite: true to start over)");
  rows = rows.narrow(0, 0, tokens).to(at::kFloat).contiguous();
  NllLog log = NllLog::create(log_path_, run_hash_);
  log.append(rows.data_ptr<float>(), tokens);
  log.sync();
}

// The KV cache restored from the state (rank 0 reads, every rank takes its shard), the stream sought.
void StreamingRun::restore(const StreamPoint& from) {
  std::unique_ptr<H5Reader> st;
  if (ctx_.writer) st = std::make_unique<H5Reader>(state_path_);
  restore_cache_shards(ctx_.world, cache_, ctx_.model_config.n_layer, st.get(), state_path_.string(),
                       ctx_.model.device(), ctx_.model.dtype());
  cache_.advance(from.tokens);
  stream_.seek(from.cursor);
  log_info("streaming_perplexity: resuming ", ctx_.out_dir.string(), " at token ", from.tokens, " (pass ",
           from.cursor.epoch + 1, ", document ", from.cursor.document, "), ", cache_.size(), " cache entries restored");
}

void StreamingRun::write_state() {
  std::unique_ptr<H5Writer> st;
  if (ctx_.writer) {
    st = std::make_unique<H5Writer>(state_path_);  // atomic: the old state stays until this one is whole
    write_provenance_attrs(*st, ctx_.provenance, "lminf.stream_state", kStateVersion);
    st->set_attr("/", "config_hash", run_hash_);
    st->set_attr("/", "resume_config", resume_config_);
    at_.cursor = stream_.cursor();
    at_.save(*st);
    st->set_attr("/", "tensor_parallel", ctx_.world.size());
    st->set_attr("/", "cache_entries", cache_.size());
    st->set_attr("/", "cache_policy", cache_.policy().name());
    acc_.save(*st);
  }
  save_cache_shards(ctx_.world, cache_, ctx_.model_config.n_layer, st.get());  // collective on every rank
  if (st) st->commit();
}

// Rank 0: the NLL log, appended to (a fresh run writes a fresh state first, so that the log never
// exists without one; the other ranks take part in its collectives). A resumed log is cut back to
// the tokens its state counts, dropping what a killed run wrote after its last state.
void StreamingRun::open_outputs(bool resume) {
  if (!ctx_.writer) {
    if (!resume) write_state();
    return;
  }
  if (resume) {
    log_ = std::make_unique<NllLog>(NllLog::resume(log_path_, run_hash_, at_.tokens));
    return;
  }
  write_state();
  log_ = std::make_unique<NllLog>(NllLog::create(log_path_, run_hash_));
}

// Rank 0 at the end: token_nll.h5 (schema lminf.stream_nll) from the log, whole, into the final outputs.
void StreamingRun::write_token_nll() {
  H5Writer h5(nll_path_);  // atomic
  H5Writer::Extendible ds = h5.create_extendible("token_nll", at::kFloat, {}, 65536);
  constexpr int64_t kBlock = 1 << 20;
  for (int64_t first = 0; first < log_->tokens(); first += kBlock) {
    std::vector<float> v = log_->read(first, std::min(kBlock, log_->tokens() - first));
    ds.append(at::from_blob(v.data(), {static_cast<int64_t>(v.size())}, at::kFloat));
  }
  write_provenance_attrs(h5, ctx_.provenance, "lminf.stream_nll", 1);
  h5.set_attr("/", "config_hash", run_hash_);
  h5.set_attr("token_nll", "meaning", "row i: NLL (nats) of stream token i + 1, predicted from tokens 0..i");
  h5.commit();
}

void StreamingRun::start() {
  StreamPoint from;
  if (ctx_.writer) from = read_start();
  from.broadcast(ctx_.world);  // rank 0 decides; the others follow
  if (from.resume) restore(from);
  at_ = from;  // a fresh run: write_state's first state is at token 0, next_token -1
  open_outputs(from.resume);
  if (!from.resume) {
    std::vector<int64_t> buf;
    if (stream_.read(1, buf) == 0) fail("data.path: ", ctx_.spec.data.path, " yields an empty stream");
    at_.next_token = buf[0];
  }
  const int64_t limit = spec_.max_tokens;
  const int tp = ctx_.world.size();
  log_info("streaming_perplexity: ", stream_.n_documents(), " documents", spec_.shuffle ? " (shuffled)" : "",
           spec_.repeat ? ", repeated" : "", ", variant ", ctx_.attention.name(), ", KV cache ", cache_.policy().name(),
           ", chunks of ", spec_.chunk_size, ", ", limit > 0 ? std::to_string(limit) + " tokens" : "the whole stream",
           tp > 1 ? ", tensor_parallel " + std::to_string(tp) : std::string());
  progress_ = std::make_unique<Progress>("stream", limit > 0 ? std::max<int64_t>(0, limit - at_.tokens) : 0, "tok",
                                         ctx_.writer, spec_.progress_interval);
  first_done_ = last_flush_ = at_.tokens;
  cpu_start_ = process_cpu_s();
}

void StreamingRun::write_results(bool complete) {
  if (!ctx_.writer) return;
  nlohmann::json r = acc_.to_json();
  r["task"] = "streaming_perplexity";
  r["complete"] = complete;
  r["stream_ended"] = at_.ended;
  r["data"] = stream_.report();
  r["resumed_from"] = first_done_;
  const double el = progress_->elapsed_s();
  r["elapsed_s"] = el;  // this invocation
  r["tokens_per_s"] = el > 0 ? static_cast<double>(at_.tokens - first_done_) / el : 0.0;
  r["cpu_s"] = process_cpu_s() - cpu_start_;  // this invocation's CPU time, all threads (load-independent)
  r["kv_cache_entries"] = cache_.size();
  r["kv_cache_bytes"] = cache_.bytes();
  r["memory"] = memory_;
  write_results_json(ctx_.final_dir / "results.json", r, ctx_.provenance);
}

void StreamingRun::checkpoint(bool complete) {
  if (ctx_.writer) log_->sync();  // the NLLs first: the state never counts rows that are not on disk
  write_state();
  const int64_t rss = resident_bytes();
  memory_.push_back({{"tokens", at_.tokens}, {"rss_bytes", rss}});
  write_results(complete);
  last_flush_ = at_.tokens;
  if (ctx_.writer)
    log_info("streaming_perplexity: ", at_.tokens, " tokens, mean NLL ", acc_.mean(), ", RSS ", rss / kMiB,
             " MiB, KV cache ", cache_.size(), " entries");
}

void StreamingRun::loop() {
  ForwardContext fctx{&ctx_.attention, ctx_.observers.empty() ? nullptr : &ctx_.observers};
  const int64_t limit = spec_.max_tokens;
  std::vector<int64_t> buf;
  while (!at_.ended && (limit == 0 || at_.tokens < limit)) {
    const int64_t need = limit > 0 ? std::min(spec_.chunk_size, limit - at_.tokens) : spec_.chunk_size;
    buf.assign(1, at_.next_token);
    const int64_t n = stream_.read(need, buf);
    if (n < need) at_.ended = true;  // a stream without repeat ran out
    if (n == 0) break;
    at::Tensor ids = at::from_blob(buf.data(), {1, n + 1}, at::kLong).clone();  // [1, n + 1] tokens done..done+n
    at::Tensor hidden = ctx_.model.forward(ids.narrow(1, 0, n).contiguous(), &cache_, fctx);  // [1, n, hidden]
    at::Tensor nll =
        ctx_.model.token_nll(hidden, ids.narrow(1, 1, n).contiguous()).to(at::kCPU, at::kFloat).contiguous();  // [1, n]
    at_.next_token = buf[static_cast<size_t>(n)];
    if (ctx_.writer) {
      log_->append(nll.data_ptr<float>(), n);
      acc_.add(at_.tokens + 1, nll.data_ptr<float>(), n);
    }
    at_.tokens += n;
    progress_->add(n);
    if (at_.tokens - last_flush_ >= spec_.flush_every) checkpoint(false);
  }
  progress_->finish();
}

void StreamingRun::summary() {
  checkpoint(true);
  if (!ctx_.writer) return;
  write_token_nll();
  const nlohmann::json s = acc_.to_json();
  print_nll_table(s["log2_buckets"], "stream positions", 22, 12, acc_.tokens, s["mean_nll"].get<double>(),
                  s["ppl"].get<double>());
  log_info("streaming_perplexity: mean NLL ", s["mean_nll"].get<double>(), " (ppl ", s["ppl"].get<double>(), ") over ",
           acc_.tokens, " tokens", at_.ended ? " (the stream ended)" : "", "; wrote ",
           (ctx_.out_dir / "results.json").string());
}

}  // namespace

std::string streaming_resume_config(const ExperimentSpec& spec, const YAML::Node& task_resolved) {
  return resume_config(spec, task_resolved, {"max_tokens", "flush_every", "progress_interval"});
}

std::vector<std::string> StreamingPerplexityTask::problems(const ExperimentSpec& spec, const ModelConfig& model) const {
  std::vector<std::string> p;
  if (spec.parallel.data_parallel > 1)
    p.push_back("parallel.data_parallel=" + std::to_string(spec.parallel.data_parallel) +
                ": task streaming_perplexity feeds one stream, which cannot be split without changing its numbers "
                "(set data_parallel: 1; tensor_parallel works, or run one stream per process with different seeds)");
  if (spec.dump.enabled())
    p.push_back("dump: task streaming_perplexity does not record factor dumps (remove the dump section, or use task "
                "perplexity or attention_dump)");
  if (spec_.repeat && spec_.max_tokens == 0)
    p.push_back("task.repeat: true makes the stream endless; set task.max_tokens to the number of tokens to predict");
  if (spec_.separator == "eos" && model.eos_token_ids.empty())
    p.push_back("task.separator: eos, but the model's config.json has no eos_token_id (use separator: none)");
  try {
    auto variant = make_attention(spec.attention);
    if (variant->cache_policy()->max_size_for_chunks(spec_.chunk_size) < 0 && spec_.max_tokens == 0)
      p.push_back("attention.variant: " + spec.attention.variant + " with cache policy " +
                  variant->cache_policy()->name() +
                  " keeps every token in its KV cache at task.chunk_size " + std::to_string(spec_.chunk_size) +
                  ", so memory grows with the stream; set task.max_tokens to bound it, or use a bounded cache "
                  "(variant lambda or streaming, attention.cache.policy h2o, or snapkv with chunk_size >= "
                  "attention.cache.window_size)");
  } catch (const Error&) {
    // attention_problems() reports what is wrong with the attention section.
  }
  return p;
}

void StreamingPerplexityTask::run(RunContext& ctx) {
  if (ctx.data_parallel && ctx.data_parallel->size() > 1)
    fail("parallel.data_parallel must be 1 for task streaming_perplexity (one stream cannot be split)");
  StreamingRun run(ctx, spec_, resolved());  // the tensor-parallel group feeds one stream
  run.start();
  run.loop();
  run.summary();
}

}  // namespace lminf
