// Task streaming_perplexity: the stream's layout (one BOS, shuffled documents, passes, resumable
// cursor), its NLL against a plain token-by-token reference for several chunk sizes, against the
// perplexity task on the same tokens, kill-and-resume equal to an uninterrupted run, and the errors
// that come before any weight is read.
#include <gtest/gtest.h>

#include <functional>

#include <csignal>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <sys/types.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include "attention/registry.h"
#include "experiments/run/run_experiment.h"
#include "experiments/tasks/streaming_perplexity_task.h"
#include "experiments/data/token_stream.h"
#include "framework/io/h5_file.h"
#include "models/model_config_json.h"
#include "models/causal_lm.h"
#include "models/random_checkpoint.h"
#include "support/test_support.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using lminf::testing::error_of;
using lminf::testing::read_text;
using lminf::testing::TempDir;
using lminf::testing::write_text;

// Documents of awkward lengths (ids 3..252), one line each.
std::vector<std::vector<int64_t>> make_documents(int n_docs, int seed) {
  std::vector<std::vector<int64_t>> docs;
  for (int d = 0; d < n_docs; ++d) {
    std::vector<int64_t> doc;
    const int len = 1 + (d * 29 + seed * 7) % 61;
    for (int i = 0; i < len; ++i) doc.push_back(3 + (d * 101 + i * 37 + seed) % 250);
    docs.push_back(doc);
  }
  return docs;
}

void write_ids(const fs::path& p, const std::vector<std::vector<int64_t>>& docs) {
  std::string s;
  for (const auto& d : docs) {
    for (size_t i = 0; i < d.size(); ++i) s += (i ? " " : "") + std::to_string(d[i]);
    s += "\n";
  }
  write_text(p, s);
}

// The stream as the task should lay it out, built independently of TokenStream.
std::vector<int64_t> expected_stream(const std::vector<std::vector<int64_t>>& docs, bool shuffle, uint64_t seed,
                                     int64_t bos, int64_t eos, int64_t n_tokens) {
  std::vector<int64_t> s;
  if (bos >= 0) s.push_back(bos);
  for (int64_t epoch = 0; static_cast<int64_t>(s.size()) < n_tokens; ++epoch) {
    std::vector<int64_t> order = seeded_permutation(static_cast<int64_t>(docs.size()), seed, epoch);
    if (!shuffle)
      for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
    for (int64_t d : order) {
      const auto& doc = docs[static_cast<size_t>(d)];
      s.insert(s.end(), doc.begin(), doc.end());
      if (eos >= 0 && !doc.empty()) s.push_back(eos);
    }
  }
  s.resize(static_cast<size_t>(n_tokens));
  return s;
}

TEST(SeededPermutation, IsAPermutationFixedBySeedAndEpoch) {
  const auto a = seeded_permutation(37, 5, 0);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 37; ++i) EXPECT_EQ(sorted[static_cast<size_t>(i)], i);
  EXPECT_EQ(a, seeded_permutation(37, 5, 0));
  EXPECT_NE(a, seeded_permutation(37, 5, 1));
  EXPECT_NE(a, seeded_permutation(37, 6, 0));
  EXPECT_TRUE(seeded_permutation(0, 1, 0).empty());
  EXPECT_EQ(seeded_permutation(1, 1, 3), std::vector<int64_t>{0});
}

class TokenStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    docs_ = make_documents(8, 1);
    write_ids(dir_ / "docs.ids", docs_);
    model_.vocab_size = 256;
    model_.bos_token_id = 1;
    model_.eos_token_ids = {2};
    data_.format = "ids";
    data_.path = (dir_ / "docs.ids").string();
  }
  TempDir dir_;
  std::vector<std::vector<int64_t>> docs_;
  ModelConfig model_;
  DataSpec data_;
};

TEST_F(TokenStreamTest, OneBosShuffledPassesAndSeparators) {
  for (bool shuffle : {false, true}) {
    for (bool eos : {false, true}) {
      TokenStreamOptions o;
      o.shuffle = shuffle;
      o.repeat = true;
      o.seed = 11;
      o.eos_separator = eos;
      TokenStream s(data_, model_, o);
      std::vector<int64_t> got;
      // Reads of awkward sizes across document and pass boundaries.
      for (int64_t n : {1, 5, 64, 3, 200, 17, 400}) EXPECT_EQ(s.read(n, got), n);
      EXPECT_EQ(got, expected_stream(docs_, shuffle, 11, 1, eos ? 2 : -1, static_cast<int64_t>(got.size())))
          << "shuffle " << shuffle << " eos " << eos;
      EXPECT_EQ(s.cursor().position, static_cast<int64_t>(got.size()));
      EXPECT_GE(s.cursor().epoch, 2);  // 690 tokens > two passes of ~250
    }
  }
}

TEST_F(TokenStreamTest, EndsWithoutRepeat) {
  TokenStreamOptions o;
  o.seed = 3;
  data_.prepend_bos = false;
  TokenStream s(data_, model_, o);
  std::vector<int64_t> got;
  int64_t total = 0;
  for (const auto& d : docs_) total += static_cast<int64_t>(d.size());
  EXPECT_EQ(s.read(100000, got), total);
  EXPECT_EQ(s.read(10, got), 0);
  EXPECT_EQ(got, expected_stream(docs_, true, 3, -1, -1, total));
}

TEST_F(TokenStreamTest, SeekContinuesWithTheSameTokens) {
  TokenStreamOptions o;
  o.repeat = true;
  o.seed = 2;
  TokenStream a(data_, model_, o);
  std::vector<int64_t> all;
  std::vector<StreamCursor> cursors;
  for (int i = 0; i < 40; ++i) {
    cursors.push_back(a.cursor());
    a.read(1 + (i * 13) % 29, all);
  }
  TokenStream b(data_, model_, o);
  for (const auto& c : cursors) {
    b.seek(c);
    std::vector<int64_t> got;
    b.read(50, got);
    ASSERT_LE(c.position + 50, static_cast<int64_t>(all.size()) + 50);
    const auto want = expected_stream(docs_, true, 2, 1, -1, c.position + 50);
    EXPECT_EQ(got, std::vector<int64_t>(want.begin() + c.position, want.end())) << "cursor at " << c.position;
  }
  EXPECT_NE(error_of([&] { b.seek(StreamCursor{10, 0, 99, 0}); }).find("does not fit"), std::string::npos);
}

// ---- The task on the tiny random model. ----

class StreamingRun : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = llama_preset("tiny");
    write_random_llama(dir_ / "model", config_, 5);
    docs_ = make_documents(13, 4);
    write_ids(dir_ / "docs.ids", docs_);
  }
  std::string yaml(const std::string& out, const std::string& attention, const std::string& task) const {
    return "name: s\nseed: 7\n"
           "model: {path: " + (dir_ / "model").string() + ", dtype: float32}\n"
           "attention: " + attention + "\n"
           "data: {format: ids, path: " + (dir_ / "docs.ids").string() + ", prepend_bos: true}\n"
           "task: {type: streaming_perplexity, progress_interval: 100, " + task + "}\n"
           "output: {dir: " + (dir_ / out).string() + "}\n";
  }
  void run(const std::string& name, const std::string& attention, const std::string& task,
           const std::vector<std::string>& overrides = {}) {
    write_text(dir_ / (name + ".yaml"), yaml(name, attention, task));
    LocalCommunicator world;
    auto exp = load_experiment((dir_ / (name + ".yaml")).string(), overrides, 1);
    run_experiment(exp, world);
  }
  at::Tensor nll(const std::string& name) const { return H5Reader(dir_ / name / "token_nll.h5").read("token_nll"); }
  nlohmann::json results(const std::string& name) const {
    return nlohmann::json::parse(read_text(dir_ / name / "results.json"));
  }
  // NLL of stream[1..] fed one token at a time through the variant's cache.
  at::Tensor token_by_token(const std::string& attention_yaml, const std::vector<int64_t>& stream) const {
    AttentionSpec as;
    read_spec(YAML::Load(attention_yaml), as, SpecSource{}, "attention");
    auto variant = make_attention(as);
    ModelConfig c = load_model_config(dir_ / "model");
    auto model = load_model(dir_ / "model", c, LoadOptions{});
    KVCache cache = model->new_cache(*variant);
    ForwardContext fctx{variant.get(), nullptr};
    std::vector<float> out;
    for (size_t t = 0; t + 1 < stream.size(); ++t) {
      at::Tensor h = model->forward(at::full({1, 1}, stream[t], at::kLong), &cache, fctx);
      out.push_back(model->token_nll(h, at::full({1, 1}, stream[t + 1], at::kLong)).item<float>());
    }
    return at::tensor(out);
  }
  TempDir dir_;
  ModelConfig config_;
  std::vector<std::vector<int64_t>> docs_;
};

constexpr const char* kLambda = "{variant: lambda, local_branch: 24, global_branch: 3, block_size: 16}";
constexpr const char* kStreaming = "{variant: streaming, start_size: 2, recent_size: 20, block_size: 16}";

TEST_F(StreamingRun, ChunkSizesEqualTokenByTokenReference) {
  for (const char* attention : {kLambda, kStreaming}) {
    const int64_t n = 300;  // a repeated stream, far longer than the cache
    at::Tensor first;
    for (int64_t chunk : {1, 7, 64}) {
      const std::string name = "c" + std::to_string(chunk) + (attention == kLambda ? "l" : "s");
      run(name, attention, "chunk_size: " + std::to_string(chunk) + ", max_tokens: 300, repeat: true, flush_every: 50");
      at::Tensor got = nll(name);
      ASSERT_EQ(got.size(0), n);
      const auto r = results(name);
      EXPECT_TRUE(r["complete"].get<bool>());
      EXPECT_EQ(r["tokens"], n);
      EXPECT_NEAR(r["mean_nll"].get<double>(), got.to(at::kDouble).mean().item<double>(), 1e-9);
      EXPECT_LE(r["kv_cache_entries"].get<int64_t>(), attention == kLambda ? 27 : 21);
      if (!first.defined()) first = got;
      EXPECT_TRUE(at::allclose(got, first, 1e-5, 1e-5)) << attention << " chunk " << chunk;
    }
    const auto stream = expected_stream(docs_, true, 7, 1, -1, n + 1);
    at::Tensor ref = token_by_token(attention, stream);
    EXPECT_TRUE(at::allclose(first, ref, 1e-5, 1e-5)) << attention << ": max diff "
                                                       << (first - ref).abs().max().item<float>();
  }
}

TEST_F(StreamingRun, EqualsPerplexityTaskOnTheSameTokens) {
  // The whole stream (once, no repeat) as one sequence for the perplexity task: shorter than the
  // lambda window (no eviction), and longer with D = L (chunked streaming equals one long prefill).
  run("stream", kLambda, "chunk_size: 16, shuffle: false");
  const auto r = results("stream");
  EXPECT_TRUE(r["stream_ended"].get<bool>());
  int64_t total = 1;
  for (const auto& d : docs_) total += static_cast<int64_t>(d.size());
  const auto stream = expected_stream(docs_, false, 0, 1, -1, total);
  at::Tensor streamed = nll("stream");
  ASSERT_EQ(streamed.size(0), total - 1);
  for (const std::string& attention : {std::string("{variant: lambda, local_branch: 64, global_branch: 3}"),
                                       std::string(kLambda)}) {
    const int64_t len = attention == kLambda ? total : 60;
    std::string line;
    for (int64_t i = 0; i < len; ++i) line += (i ? " " : "") + std::to_string(stream[static_cast<size_t>(i)]);
    write_text(dir_ / "one.ids", line + "\n");
    const std::string ppl_yaml =
        "name: p\nmodel: {path: " + (dir_ / "model").string() + "}\nattention: " + attention + "\n" +
        "data: {format: ids, path: " + (dir_ / "one.ids").string() + ", prepend_bos: false}\n" +
        "task: {type: perplexity, max_length: 100000}\noutput: {dir: " + (dir_ / "ppl").string() + ", overwrite: true}\n";
    write_text(dir_ / "ppl.yaml", ppl_yaml);
    LocalCommunicator world;
    auto exp = load_experiment((dir_ / "ppl.yaml").string(), {}, 1);
    run_experiment(exp, world);
    at::Tensor want = H5Reader(dir_ / "ppl" / "token_nll.h5").read("token_nll")[0];
    if (len == 60) {
      // Window 64 > 60 tokens: the short stream's own run, chunked, equals the plain forward.
      run("short", attention, "chunk_size: 7, shuffle: false, max_tokens: 59");
      EXPECT_TRUE(at::allclose(nll("short"), want, 1e-5, 1e-5));
    } else {
      EXPECT_TRUE(at::allclose(streamed, want, 1e-5, 1e-5)) << (streamed - want).abs().max().item<float>();
    }
  }
}

TEST_F(StreamingRun, ResumedRunEqualsUninterrupted) {
  const std::string task = "chunk_size: 8, repeat: true, flush_every: 20, segment: 64";
  run("whole", kLambda, task + ", max_tokens: 256");
  // Stops on chunk boundaries (as every flush of a killed run is): bit for bit.
  run("parts", kLambda, task + ", max_tokens: 96");
  EXPECT_EQ(nll("parts").size(0), 96);
  EXPECT_EQ(H5Reader(dir_ / "parts" / "stream_state.h5").attr_int("/", "tokens"), 96);
  // A killed run leaves NLLs after its last state (and a torn last float): junk the resume must drop.
  {
    std::ofstream log(dir_ / "parts" / "token_nll.partial.f32", std::ios::binary | std::ios::app);
    const std::vector<float> junk(13, 99.0f);
    log.write(reinterpret_cast<const char*>(junk.data()), static_cast<std::streamsize>(junk.size() * sizeof(float)));
    log.write("\x01\x02", 2);
  }
  run("parts", kLambda, task + ", max_tokens: 184");
  run("parts", kLambda, task + ", max_tokens: 256");
  at::Tensor a = nll("whole"), b = nll("parts");
  ASSERT_EQ(b.size(0), 256);
  EXPECT_TRUE(at::equal(a, b)) << "max diff " << (a - b).abs().max().item<float>();
  const auto ra = results("whole"), rb = results("parts");
  EXPECT_EQ(ra["mean_nll"].get<double>(), rb["mean_nll"].get<double>());
  EXPECT_EQ(ra["segments"], rb["segments"]);
  EXPECT_EQ(ra["log2_buckets"], rb["log2_buckets"]);
  EXPECT_EQ(rb["resumed_from"], 184);
  EXPECT_EQ(ra["segments"].size(), 5u);  // positions 1..256 in segments of 64

  // Extended from a max_tokens inside a chunk, the chunks fall elsewhere: equal within float32 rounding.
  run("ext", kLambda, task + ", max_tokens: 100");
  run("ext", kLambda, task + ", max_tokens: 256");
  at::Tensor c = nll("ext");
  ASSERT_EQ(c.size(0), 256);
  EXPECT_TRUE(at::equal(a.narrow(0, 0, 96), c.narrow(0, 0, 96)));  // before the partial chunk
  EXPECT_TRUE(at::allclose(a, c, 1e-5, 1e-5)) << "max diff " << (a - c).abs().max().item<float>();
  EXPECT_NEAR(ra["mean_nll"].get<double>(), results("ext")["mean_nll"].get<double>(), 1e-6);

  // Another configuration is refused, naming the key; overwrite starts over.
  const std::string msg = error_of([&] { run("parts", kLambda, "chunk_size: 4, repeat: true, flush_every: 20, "
                                                              "segment: 64, max_tokens: 300"); });
  EXPECT_NE(msg.find("task.chunk_size: 8 -> 4"), std::string::npos) << msg;
  run("parts", kLambda, "chunk_size: 4, repeat: true, flush_every: 20, segment: 64, max_tokens: 30",
      {"output.overwrite=true"});
  EXPECT_EQ(nll("parts").size(0), 30);
}

// A damaged resume state is refused naming the file before it is used: running sums that disagree
// with their counts (add() indexes them together), a cache shard of another entry count.
TEST_F(StreamingRun, DamagedStateRefusedNamingTheFile) {
  const std::string task = "chunk_size: 8, repeat: true, flush_every: 20, segment: 64";
  const fs::path state = dir_ / "d" / "stream_state.h5";
  auto damaged = [&](const std::function<void(H5Writer&)>& edit) {
    fs::remove_all(dir_ / "d");
    run("d", kLambda, task + ", max_tokens: 96");
    {
      H5Writer w = H5Writer::resume_in_place(state);
      edit(w);
      w.commit();
    }
    return error_of([&] { run("d", kLambda, task + ", max_tokens: 184"); });
  };
  std::string e = damaged([](H5Writer& w) { w.set_attr("/", "log2_count", std::vector<int64_t>{1}); });
  EXPECT_NE(e.find(state.string() + ": nll_tokens (96), log2_sum / log2_count"), std::string::npos) << e;
  e = damaged([](H5Writer& w) { w.set_attr("/", "cache_entries", int64_t{3}); });
  EXPECT_NE(e.find(state.string() + ": cache/"), std::string::npos) << e;
  EXPECT_NE(e.find("3 (cache_entries)"), std::string::npos) << e;
}

TEST_F(StreamingRun, SigkillAtAnyMomentResumes) {
  const std::string task = "chunk_size: 4, repeat: true, flush_every: 12, max_tokens: 4000";
  write_text(dir_ / "k.yaml", yaml("k", kStreaming, task));
  run("u", kStreaming, task);
  const std::string cmd = lminf::testing::lminf_binary().string() + " run " + (dir_ / "k.yaml").string();
  for (int attempt = 0; attempt < 3; ++attempt) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      execl("/bin/sh", "sh", "-c", ("exec " + cmd + " >/dev/null 2>&1").c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    // Kill once some state is on disk (or after a while: a kill at any moment must be safe).
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50 + 70 * attempt));
      try {
        if (fs::exists(dir_ / "k" / "stream_state.h5") &&
            H5Reader(dir_ / "k" / "stream_state.h5").attr_int("/", "tokens") > 300 * (attempt + 1))
          break;
      } catch (const Error&) {
      }
    }
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
  }
  std::string out;
  ASSERT_EQ(lminf::testing::run_command(cmd, &out), 0) << out;
  EXPECT_NE(out.find("resuming"), std::string::npos) << out;
  at::Tensor a = nll("u"), b = nll("k");
  ASSERT_EQ(b.size(0), 4000);
  EXPECT_TRUE(at::equal(a, b)) << "max diff " << (a - b).abs().max().item<float>();
  EXPECT_EQ(results("u")["mean_nll"].get<double>(), results("k")["mean_nll"].get<double>());
}

// SIGINT and SIGTERM stop the real binary at its next chunk: exit 128 + signal with a message, no
// final file (token_nll.h5, results.json, config.yaml) and no temporary in output.dir, the resume
// state kept; rerunning completes with the NLLs of an uninterrupted run.
TEST_F(StreamingRun, SigintAndSigtermStopCleanlyAndResume) {
  const std::string task = "chunk_size: 4, repeat: true, flush_every: 12, max_tokens: 2000";
  run("u", kStreaming, task);
  write_text(dir_ / "k.yaml", yaml("k", kStreaming, task));
  const std::string cmd = lminf::testing::lminf_binary().string() + " run " + (dir_ / "k.yaml").string();
  const fs::path log = dir_ / "k.log";
  int round = 0;
  for (int sig : {SIGINT, SIGTERM}) {
    ++round;
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      execl("/bin/sh", "sh", "-c", ("exec " + cmd + " >" + log.string() + " 2>&1").c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      try {
        if (fs::exists(dir_ / "k" / "stream_state.h5") &&
            H5Reader(dir_ / "k" / "stream_state.h5").attr_int("/", "tokens") > 250 * round)
          break;
      } catch (const Error&) {
      }
    }
    kill(pid, sig);
    int status = 0;
    const auto t1 = std::chrono::steady_clock::now();
    while (waitpid(pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() - t1 > std::chrono::seconds(30)) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        FAIL() << "lminf did not stop within 30 s of signal " << sig;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    const std::string out = read_text(log);
    ASSERT_TRUE(WIFEXITED(status)) << out;
    EXPECT_EQ(WEXITSTATUS(status), 128 + sig) << out;
    EXPECT_NE(out.find(sig == SIGINT ? "interrupted by SIGINT" : "interrupted by SIGTERM"), std::string::npos) << out;
    for (const char* f : {"results.json", "token_nll.h5", "config.yaml"})
      EXPECT_FALSE(fs::exists(dir_ / "k" / f)) << f << " after signal " << sig;
    for (const auto& name : lminf::testing::dir_entries(dir_ / "k")) EXPECT_EQ(name.find(".tmp-"), std::string::npos) << name;
    EXPECT_TRUE(fs::exists(dir_ / "k" / "stream_state.h5"));
  }
  std::string out;
  ASSERT_EQ(lminf::testing::run_command(cmd, &out), 0) << out;
  EXPECT_NE(out.find("resuming"), std::string::npos) << out;
  at::Tensor a = nll("u"), b = nll("k");
  ASSERT_EQ(b.size(0), 2000);
  EXPECT_TRUE(at::equal(a, b)) << "max diff " << (a - b).abs().max().item<float>();
}

TEST_F(StreamingRun, BadConfigsFailBeforeWeights) {
  auto load = [&](const std::string& attention, const std::string& task, int world = 1,
                  const std::vector<std::string>& overrides = {}) {
    write_text(dir_ / "bad.yaml", yaml("bad", attention, task));
    return error_of([&] { load_experiment((dir_ / "bad.yaml").string(), overrides, world); });
  };
  std::string msg = load("{variant: vanilla}", "chunk_size: 8");
  EXPECT_NE(msg.find("keeps every token in its KV cache"), std::string::npos) << msg;
  EXPECT_EQ(load("{variant: vanilla}", "chunk_size: 8, max_tokens: 100"), "");  // bounded by max_tokens
  msg = load(kLambda, "chunk_size: 0");
  EXPECT_NE(msg.find("task.chunk_size"), std::string::npos) << msg;
  msg = load(kLambda, "repeat: true");
  EXPECT_NE(msg.find("task.repeat"), std::string::npos) << msg;
  msg = load(kLambda, "separator: tab");
  EXPECT_NE(msg.find("task.separator"), std::string::npos) << msg;
  msg = load(kLambda, "chunk_size: 8", 2, {"parallel.data_parallel=2"});
  EXPECT_NE(msg.find("cannot be split"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir_ / "bad"));

  // A folder with another task's results is not taken over.
  fs::create_directories(dir_ / "bad");
  write_text(dir_ / "bad" / "results.json", "{}");
  write_text(dir_ / "bad.yaml", yaml("bad", kLambda, "chunk_size: 8"));
  LocalCommunicator world;
  auto exp = load_experiment((dir_ / "bad.yaml").string(), {}, 1);
  msg = error_of([&] { run_experiment(exp, world); });
  EXPECT_NE(msg.find("exists without stream_state.h5"), std::string::npos) << msg;
}

// ---- The embedded model (real tokenizer, text documents). ----

TEST(StreamingEmbedded, ChunkSizesEqualTokenByTokenReference) {
  const fs::path model = lminf::testing::source_dir() / "embedded" / "lminf-info-1m";
  TempDir dir;
  std::vector<std::string> texts = {
      "The sed utility reads its input line by line, applies the script, and writes the result.",
      "grep searches the named input files for lines containing a match to the given patterns.",
      "Use diff to compare two files line by line; cmp compares bytes, and diff3 three files.",
      "A regular expression is a pattern that describes a set of strings.",
  };
  fs::create_directories(dir / "docs");
  for (size_t i = 0; i < texts.size(); ++i) write_text(dir / "docs" / ("d" + std::to_string(i) + ".txt"), texts[i]);
  const std::string attention = "{variant: lambda, local_branch: 32, global_branch: 4}";
  at::Tensor first;
  for (int64_t chunk : {1, 7, 64}) {
    const std::string out = "o" + std::to_string(chunk);
    write_text(dir / "e.yaml", "name: e\nseed: 3\nmodel: {path: " + model.string() + "}\nattention: " + attention +
                                   "\ndata: {format: text, path: " + (dir / "docs").string() + "}\n" +
                                   "task: {type: streaming_perplexity, chunk_size: " + std::to_string(chunk) +
                                   ", max_tokens: 200, repeat: true, separator: eos, flush_every: 64}\n" +
                                   "output: {dir: " + (dir / out).string() + "}\n");
    LocalCommunicator world;
    auto exp = load_experiment((dir / "e.yaml").string(), {}, 1);
    run_experiment(exp, world);
    at::Tensor got = H5Reader(dir / out / "token_nll.h5").read("token_nll");
    ASSERT_EQ(got.size(0), 200);
    if (!first.defined()) first = got;
    EXPECT_TRUE(at::allclose(got, first, 1e-5, 1e-5)) << "chunk " << chunk;
  }
  // The reference: the same stream, built here, one token at a time.
  ModelConfig c = load_model_config(model);
  DataSpec data;
  data.format = "text";
  data.path = (dir / "docs").string();
  TokenStreamOptions so;
  so.repeat = true;
  so.seed = 3;
  so.eos_separator = true;
  TokenStream stream(data, c, so);
  std::vector<int64_t> ids;
  stream.read(201, ids);
  EXPECT_EQ(ids[0], c.bos_token_id);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), c.bos_token_id), 1);
  EXPECT_GE(std::count(ids.begin(), ids.end(), c.eos_token_ids[0]), 4);
  AttentionSpec as;
  read_spec(YAML::Load(attention), as, SpecSource{}, "attention");
  auto variant = make_attention(as);
  auto m = load_model(model, c, LoadOptions{});
  KVCache cache = m->new_cache(*variant);
  ForwardContext fctx{variant.get(), nullptr};
  std::vector<float> ref;
  for (size_t t = 0; t + 1 < ids.size(); ++t) {
    at::Tensor h = m->forward(at::full({1, 1}, ids[t], at::kLong), &cache, fctx);
    ref.push_back(m->token_nll(h, at::full({1, 1}, ids[t + 1], at::kLong)).item<float>());
  }
  EXPECT_TRUE(at::allclose(first, at::tensor(ref), 1e-5, 1e-5));
}

}  // namespace
}  // namespace lminf
