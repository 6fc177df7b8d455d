#include "experiments/tasks/streaming_perplexity_task.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>

#include <sys/resource.h>

#include "attention/registry.h"
#include "experiments/outputs/outputs.h"
#include "experiments/outputs/resume_config.h"
#include "experiments/data/token_stream.h"
#include "framework/io/atomic_file.h"
#include "framework/core/error.h"
#include "framework/io/h5_file.h"
#include "framework/core/logging.h"
#include "framework/core/process_memory.h"
#include "framework/core/progress.h"

namespace lminf {
namespace fs = std::filesystem;

namespace {

constexpr const char* kNllFile = "token_nll.h5";
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

double mean_or_nan(double sum, int64_t n) {
  return n > 0 ? sum / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
}

// Running sums of the NLLs in stream order (float64, one token at a time, so a resumed run that
// restores them adds in the same order as an uninterrupted one).
struct RunningNll {
  int64_t segment = 0;  // 0: no segments
  int64_t tokens = 0;
  double sum = 0;
  std::vector<double> log_sum;  // bucket k: stream positions [2^k, 2^(k+1))
  std::vector<int64_t> log_count;
  std::vector<double> seg_sum;  // segment j: stream positions [j * segment, (j + 1) * segment)
  std::vector<int64_t> seg_count;

  // nll[i] is the NLL of the token at stream position first_position + i.
  void add(int64_t first_position, const float* nll, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      const int64_t p = first_position + i;
      const double x = nll[i];
      sum += x;
      ++tokens;
      size_t k = 0;
      while ((int64_t{2} << k) <= p) ++k;
      if (log_sum.size() <= k) {
        log_sum.resize(k + 1, 0.0);
        log_count.resize(k + 1, 0);
      }
      log_sum[k] += x;
      ++log_count[k];
      if (segment > 0) {
        const size_t j = static_cast<size_t>(p / segment);
        if (seg_sum.size() <= j) {
          seg_sum.resize(j + 1, 0.0);
          seg_count.resize(j + 1, 0);
        }
        seg_sum[j] += x;
        ++seg_count[j];
      }
    }
  }

  nlohmann::json to_json() const {
    nlohmann::json j;
    j["tokens"] = tokens;
    j["mean_nll"] = mean_or_nan(sum, tokens);
    j["ppl"] = std::exp(j["mean_nll"].get<double>());
    auto table = [](const std::vector<double>& s, const std::vector<int64_t>& c, auto start, auto end) {
      nlohmann::json t = nlohmann::json::array();
      for (size_t i = 0; i < s.size(); ++i) {
        if (c[i] == 0) continue;
        const double m = s[i] / static_cast<double>(c[i]);
        t.push_back({{"start", start(i)}, {"end", end(i)}, {"tokens", c[i]}, {"mean_nll", m}, {"ppl", std::exp(m)}});
      }
      return t;
    };
    j["log2_buckets"] = table(log_sum, log_count, [](size_t k) { return int64_t{1} << k; },
                              [](size_t k) { return int64_t{2} << k; });
    const int64_t w = segment;
    j["segment"] = segment;
    j["segments"] = table(seg_sum, seg_count, [w](size_t i) { return static_cast<int64_t>(i) * w; },
                          [w](size_t i) { return static_cast<int64_t>(i + 1) * w; });
    return j;
  }

  void save(H5Writer& h5) const {
    h5.set_attr("/", "nll_tokens", tokens);
    h5.set_attr("/", "nll_sum", sum);
    if (!log_sum.empty()) {
      h5.set_attr("/", "log2_sum", log_sum);
      h5.set_attr("/", "log2_count", log_count);
    }
    if (!seg_sum.empty()) {
      h5.set_attr("/", "segment_sum", seg_sum);
      h5.set_attr("/", "segment_count", seg_count);
    }
  }
  void load(const H5Reader& h5) {
    tokens = h5.attr_int("/", "nll_tokens");
    sum = h5.attr_double("/", "nll_sum");
    if (h5.has_attr("/", "log2_sum")) {
      log_sum = h5.attr_doubles("/", "log2_sum");
      log_count = h5.attr_ints("/", "log2_count");
    }
    if (h5.has_attr("/", "segment_sum")) {
      seg_sum = h5.attr_doubles("/", "segment_sum");
      seg_count = h5.attr_ints("/", "segment_count");
    }
  }
};

// Where a run starts: from nothing, or from the state of an earlier run with the same configuration.
struct StartPoint {
  bool resume = false;
  int64_t tokens = 0;        // NLLs written (= tokens fed)
  StreamCursor cursor;       // of the token after next_token
  int64_t next_token = -1;   // stream token `tokens`: the next input
  bool ended = false;        // the (non-repeating) stream ended there
};

std::string layer_path(int64_t l, const char* what) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "cache/layer_%03lld/%s", static_cast<long long>(l), what);
  return buf;
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
    if (variant->cache_policy()->max_size() < 0 && spec_.max_tokens == 0)
      p.push_back("attention.variant: " + spec.attention.variant +
                  " keeps every token in its KV cache, so memory grows with the stream; set task.max_tokens to "
                  "bound it, or use a variant with a bounded cache (lambda, streaming)");
  } catch (const Error&) {
    // attention_problems() reports what is wrong with the attention section.
  }
  return p;
}

void StreamingPerplexityTask::run(RunContext& ctx) {
  const ExperimentSpec& es = ctx.spec;
  if (ctx.data_parallel && ctx.data_parallel->size() > 1)
    fail("parallel.data_parallel must be 1 for task streaming_perplexity (one stream cannot be split)");
  Communicator& world = ctx.world;  // the tensor-parallel group (data_parallel is 1)
  const int tp = world.size(), tp_rank = world.rank();
  const int64_t n_layer = ctx.model_config.n_layer;
  const fs::path nll_path = ctx.out_dir / kNllFile, state_path = ctx.out_dir / kStateFile;
  const std::string resume_config = streaming_resume_config(es, resolved());
  const std::string run_hash = config_hash(resume_config);

  TokenStreamOptions so;
  so.shuffle = spec_.shuffle;
  so.repeat = spec_.repeat;
  so.seed = static_cast<uint64_t>(es.seed);
  so.eos_separator = spec_.separator == "eos";
  TokenStream stream(es.data, ctx.model_config, so);

  KVCache cache = ctx.model.new_cache(ctx.attention);
  const int64_t cache_bound = cache.policy().max_size();
  if (cache_bound < 0) {
    const int64_t per_token = n_layer * 2 * ctx.model_config.n_head_kv * ctx.model_config.head_dim *
                              static_cast<int64_t>(c10::elementSize(ctx.model.dtype())) / tp;
    log_warn("streaming_perplexity: attention.variant ", es.attention.variant,
             " keeps every token in its KV cache: memory grows by ", per_token, " bytes per token, ",
             per_token * spec_.max_tokens / kMiB, " MiB per rank at task.max_tokens=", spec_.max_tokens);
  }

  // ---- Where to start (rank 0 decides; the others follow its broadcast). ----
  StartPoint start;
  RunningNll acc;
  acc.segment = spec_.segment;
  if (ctx.writer) {
    if (es.output.overwrite) {
      fs::remove(state_path);
      fs::remove(nll_path);
    } else if (fs::exists(state_path)) {
      H5Reader st(state_path);
      if (!st.has_attr("/", "schema") || st.attr_string("/", "schema") != "lminf.stream_state")
        fail("output.dir: ", state_path.string(), " is not a streaming_perplexity state file (choose another "
             "output.dir, or set output.overwrite: true to replace it)");
      if (st.attr_int("/", "schema_version") != kStateVersion)
        fail("output.dir: ", state_path.string(), " has state schema version ", st.attr_int("/", "schema_version"),
             "; this lminf reads version ", kStateVersion, " (set output.overwrite: true to start over)");
      if (st.attr_string("/", "config_hash") != run_hash)
        fail("output.dir: ", ctx.out_dir.string(), " holds a partial streaming run with another configuration, so it "
             "cannot be resumed; the keys that differ:", config_differences(st.attr_string("/", "resume_config"),
             resume_config), "\n  (restore them, choose another output.dir, or set output.overwrite: true to start over)");
      start.tokens = st.attr_int("/", "tokens");
      if (start.tokens > 0) {
        if (!fs::exists(nll_path))
          fail("output.dir: ", state_path.string(), " records ", start.tokens, " tokens but ", nll_path.string(),
               " is missing (set output.overwrite: true to start over)");
        {
          H5Reader nll(nll_path);
          if (!nll.has_attr("/", "config_hash") || nll.attr_string("/", "config_hash") != run_hash)
            fail("output.dir: ", nll_path.string(), " does not belong to ", state_path.string(),
                 " (set output.overwrite: true to start over)");
        }
        start.resume = true;
        start.cursor = StreamCursor::from_vector(st.attr_ints("/", "cursor"));
        start.next_token = st.attr_int("/", "next_token");
        start.ended = st.attr_int("/", "ended") != 0;
        if (start.cursor.position != start.tokens + 1)
          fail(state_path.string(), ": stream position ", start.cursor.position, " does not follow ", start.tokens,
               " tokens (a damaged state; set output.overwrite: true to start over)");
        acc.load(st);
        if (acc.tokens != start.tokens)
          fail(state_path.string(), ": running sums over ", acc.tokens, " tokens, state at ", start.tokens,
               " (a damaged state; set output.overwrite: true to start over)");
      }
    } else {
      for (const fs::path& p : {nll_path, ctx.out_dir / "results.json"})
        if (fs::exists(p))
          fail("output.dir: ", p.string(), " exists without ", kStateFile, " (an earlier run of another task, or a "
               "deleted state); choose another output.dir, or set output.overwrite: true to replace it");
    }
  }
  at::Tensor plan = at::zeros({8}, at::kLong);
  if (ctx.writer) {
    const auto c = start.cursor.to_vector();
    plan = at::tensor(std::vector<int64_t>{start.resume, start.tokens, c[0], c[1], c[2], c[3], start.next_token,
                                           start.ended},
                      at::kLong);
  }
  world.broadcast(plan, 0);
  {
    auto a = plan.accessor<int64_t, 1>();
    start.resume = a[0] != 0;
    start.tokens = a[1];
    start.cursor = StreamCursor{a[2], a[3], a[4], a[5]};
    start.next_token = a[6];
    start.ended = a[7] != 0;
  }

  // ---- The KV cache: restored from the state (rank 0 reads, every rank takes its shard). ----
  if (start.resume) {
    std::unique_ptr<H5Reader> st;
    at::Tensor entries = at::zeros({1}, at::kLong);
    if (ctx.writer) {
      st = std::make_unique<H5Reader>(state_path);
      if (st->attr_int("/", "tensor_parallel") != tp)
        fail(state_path.string(), ": written with tensor_parallel ", st->attr_int("/", "tensor_parallel"), ", not ", tp);
      entries.fill_(st->attr_int("/", "cache_entries"));
    }
    world.broadcast(entries, 0);
    // Rank 0's [tp, B, Hkv_local, S, D] tensor on every rank (float32: bfloat16 is stored as float32).
    auto from_root = [&](const std::string& path) {
      at::Tensor full, shape = at::zeros({5}, at::kLong);
      if (ctx.writer) {
        full = st->read(path).to(at::kFloat).contiguous();
        if (full.dim() != 5 || full.size(0) != tp) fail(state_path.string(), ": ", path, " has shape ", full.sizes());
        shape = at::tensor(full.sizes().vec(), at::kLong);
      }
      world.broadcast(shape, 0);
      if (!ctx.writer) full = at::empty(std::vector<int64_t>(shape.data_ptr<int64_t>(), shape.data_ptr<int64_t>() + 5), at::kFloat);
      world.broadcast(full, 0);
      return full[tp_rank].to(ctx.model.device(), ctx.model.dtype());
    };
    if (entries.item<int64_t>() > 0) {
      for (int64_t l = 0; l < n_layer; ++l) {
        at::Tensor k = from_root(layer_path(l, "k")), v = from_root(layer_path(l, "v"));
        cache.layer(l).append(k, v);
      }
    }
    cache.advance(start.tokens);
    stream.seek(start.cursor);
    log_info("streaming_perplexity: resuming ", ctx.out_dir.string(), " at token ", start.tokens, " (pass ",
             start.cursor.epoch + 1, ", document ", start.cursor.document, "), ", cache.size(), " cache entries restored");
  }

  // ---- Outputs (rank 0): the NLL dataset, appended in place. ----
  std::unique_ptr<H5Writer> h5;
  std::unique_ptr<H5Writer::Extendible> nll_ds;
  auto write_state = [&](int64_t tokens, int64_t next_token, bool ended) {
    std::unique_ptr<H5Writer> st;
    if (ctx.writer) {
      st = std::make_unique<H5Writer>(state_path);  // atomic: the old state stays until this one is whole
      write_provenance_attrs(*st, ctx.provenance, "lminf.stream_state", kStateVersion);
      st->set_attr("/", "config_hash", run_hash);
      st->set_attr("/", "resume_config", resume_config);
      st->set_attr("/", "tokens", tokens);
      st->set_attr("/", "next_token", next_token);
      st->set_attr("/", "ended", ended ? 1 : 0);
      st->set_attr("/", "cursor", stream.cursor().to_vector());
      st->set_attr("/", "tensor_parallel", tp);
      st->set_attr("/", "cache_entries", cache.size());
      st->set_attr("/", "cache_policy", cache.policy().name());
      acc.save(*st);
    }
    // Every rank's cache shards, gathered to rank 0 one layer at a time (collective on every rank).
    for (int64_t l = 0; l < n_layer && cache.size() > 0; ++l) {
      LayerCache& lc = cache.layer(l);
      at::Tensor k = world.all_gather(lc.keys().to(at::kCPU).contiguous().unsqueeze(0), 0);  // [tp, B, Hkv_local, S, D]
      at::Tensor v = world.all_gather(lc.values().to(at::kCPU).contiguous().unsqueeze(0), 0);
      if (st) {
        st->write(layer_path(l, "k"), k);
        st->write(layer_path(l, "v"), v);
      }
    }
    if (st) st->commit();
  };

  if (ctx.writer) {
    if (start.resume) {
      h5 = std::make_unique<H5Writer>(H5Writer::resume_in_place(nll_path));
      nll_ds = std::make_unique<H5Writer::Extendible>(h5->open_extendible("token_nll"));
      if (nll_ds->rows() < start.tokens)
        fail(nll_path.string(), " holds ", nll_ds->rows(), " NLLs but its state records ", start.tokens,
             " (the file was changed; set output.overwrite: true to start over)");
      nll_ds->resize(start.tokens);  // drop what a killed run wrote after its last state
    } else {
      write_state(0, -1, false);  // a fresh state first: token_nll.h5 never exists without one
      h5 = std::make_unique<H5Writer>(H5Writer::open_in_place(nll_path));
      nll_ds = std::make_unique<H5Writer::Extendible>(h5->create_extendible("token_nll", at::kFloat, {}, 65536));
      write_provenance_attrs(*h5, ctx.provenance, "lminf.stream_nll", 1);
      h5->set_attr("/", "config_hash", run_hash);
      h5->set_attr("token_nll", "meaning", "row i: NLL (nats) of stream token i + 1, predicted from tokens 0..i");
      h5->flush();
    }
  } else if (!start.resume) {
    write_state(0, -1, false);  // its collectives
  }

  // ---- The stream. ----
  std::vector<int64_t> buf;
  int64_t done = start.tokens;
  int64_t next_token = start.next_token;
  bool ended = start.ended;
  if (!start.resume) {
    if (stream.read(1, buf) == 0) fail("data.path: ", es.data.path, " yields an empty stream");
    next_token = buf[0];
  }
  const int64_t limit = spec_.max_tokens;
  log_info("streaming_perplexity: ", stream.n_documents(), " documents", spec_.shuffle ? " (shuffled)" : "",
           spec_.repeat ? ", repeated" : "", ", variant ", ctx.attention.name(), ", KV cache ", cache.policy().name(),
           ", chunks of ", spec_.chunk_size, ", ", limit > 0 ? std::to_string(limit) + " tokens" : "the whole stream",
           tp > 1 ? ", tensor_parallel " + std::to_string(tp) : std::string());
  Progress progress("stream", limit > 0 ? std::max<int64_t>(0, limit - done) : 0, "tok", ctx.writer,
                    spec_.progress_interval);
  ForwardContext fctx{&ctx.attention, ctx.observers.empty() ? nullptr : &ctx.observers};
  nlohmann::json memory = nlohmann::json::array();
  const int64_t first_done = done;
  const double cpu_start = process_cpu_s();
  int64_t last_flush = done;

  auto write_results = [&](bool complete) {
    if (!ctx.writer) return;
    nlohmann::json r = acc.to_json();
    r["task"] = "streaming_perplexity";
    r["complete"] = complete;
    r["stream_ended"] = ended;
    r["data"] = stream.report();
    r["resumed_from"] = first_done;
    const double el = progress.elapsed_s();
    r["elapsed_s"] = el;  // this invocation
    r["tokens_per_s"] = el > 0 ? static_cast<double>(done - first_done) / el : 0.0;
    r["cpu_s"] = process_cpu_s() - cpu_start;  // this invocation's CPU time, all threads (load-independent)
    r["kv_cache_entries"] = cache.size();
    r["kv_cache_bytes"] = cache.bytes();
    r["memory"] = memory;
    write_results_json(ctx.out_dir / "results.json", r, ctx.provenance);
  };
  auto checkpoint = [&](bool complete) {
    if (ctx.writer) h5->flush();  // the NLLs first: the state never counts rows that are not on disk
    write_state(done, next_token, ended);
    const int64_t rss = resident_bytes();
    memory.push_back({{"tokens", done}, {"rss_bytes", rss}});
    write_results(complete);
    last_flush = done;
    if (ctx.writer)
      log_info("streaming_perplexity: ", done, " tokens, mean NLL ", mean_or_nan(acc.sum, acc.tokens), ", RSS ",
               rss / kMiB, " MiB, KV cache ", cache.size(), " entries");
  };

  while (!ended && (limit == 0 || done < limit)) {
    const int64_t need = limit > 0 ? std::min(spec_.chunk_size, limit - done) : spec_.chunk_size;
    buf.assign(1, next_token);
    const int64_t n = stream.read(need, buf);
    if (n < need) ended = true;  // a stream without repeat ran out
    if (n == 0) break;
    at::Tensor ids = at::from_blob(buf.data(), {1, n + 1}, at::kLong).clone();  // [1, n + 1] tokens done..done+n
    at::Tensor hidden = ctx.model.forward(ids.narrow(1, 0, n).contiguous(), &cache, fctx);  // [1, n, hidden]
    at::Tensor nll = ctx.model.token_nll(hidden, ids.narrow(1, 1, n).contiguous()).to(at::kCPU, at::kFloat).contiguous();  // [1, n]
    next_token = buf[static_cast<size_t>(n)];
    if (ctx.writer) {
      nll_ds->append(nll[0]);
      acc.add(done + 1, nll.data_ptr<float>(), n);
    }
    done += n;
    progress.add(n);
    if (done - last_flush >= spec_.flush_every) checkpoint(false);
  }
  progress.finish();
  checkpoint(true);
  if (ctx.writer) {
    h5->commit();
    const nlohmann::json s = acc.to_json();
    std::printf("%-22s %12s %10s %12s\n", "stream positions", "tokens", "mean NLL", "perplexity");
    for (const auto& b : s["log2_buckets"]) {
      char range[48];
      std::snprintf(range, sizeof range, "%lld-%lld", static_cast<long long>(b["start"].get<int64_t>()),
                    static_cast<long long>(b["end"].get<int64_t>() - 1));
      std::printf("%-22s %12lld %10.4f %12.3f\n", range, static_cast<long long>(b["tokens"].get<int64_t>()),
                  b["mean_nll"].get<double>(), b["ppl"].get<double>());
    }
    std::printf("%-22s %12lld %10.4f %12.3f\n", "all", static_cast<long long>(acc.tokens),
                s["mean_nll"].get<double>(), s["ppl"].get<double>());
    std::fflush(stdout);
    log_info("streaming_perplexity: mean NLL ", s["mean_nll"].get<double>(), " (ppl ", s["ppl"].get<double>(),
             ") over ", acc.tokens, " tokens", ended ? " (the stream ended)" : "", "; wrote ",
             (ctx.out_dir / "results.json").string());
  }
}

}  // namespace lminf
