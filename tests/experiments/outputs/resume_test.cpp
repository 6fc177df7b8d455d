// The sample-based tasks (passkey, generation, qa) resume after a kill (experiments/outputs/record_journal.h):
// a run SIGKILLed after k journalled samples, with a torn last journal line, then run again writes
// the same files as an uninterrupted run (timing fields aside); another configuration is refused
// naming the key, overwrite starts over, a journal of another data_parallel is refused. Also: qa
// reads data.format jsonl.zst. All through the lminf binary on a tiny random model with the
// embedded model's tokenizer. The kill is a real SIGKILL the journal raises at a chosen sample
// (LMINF_TEST_KILL_AFTER_RECORDS), so the test does not depend on timing.
#include <gtest/gtest.h>

#include <zstd.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "models/random_checkpoint.h"
#include "support/test_support.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using lminf::testing::lminf_binary;
using lminf::testing::read_text;
using lminf::testing::run_command;
using lminf::testing::source_dir;
using lminf::testing::TempDir;
using lminf::testing::write_text;

fs::path embedded() { return source_dir() / "embedded" / "lminf-info-1m"; }

const char* kSentences[] = {
    "The stream editor reads its input line by line and applies each command in the script. ",
    "A regular expression matches a set of strings; grep prints the lines that contain a match. ",
    "Options that take an argument may be written with an equals sign or as the next word. ",
    "When the hold space is empty, the exchange command copies the pattern space into it. ",
    "The diff program compares two files and reports the lines that differ between them. ",
};

std::string document(int i, int sentences) {
  std::string s;
  for (int k = 0; k < sentences; ++k) s += kSentences[(i + 2 * k) % 5];
  return s;
}

std::string zstd_compress(const std::string& s) {
  std::string out(ZSTD_compressBound(s.size()), '\0');
  out.resize(ZSTD_compress(out.data(), out.size(), s.data(), s.size(), 3));
  return out;
}

int64_t count_lines(const fs::path& p) {
  const std::string t = read_text(p);
  return static_cast<int64_t>(std::count(t.begin(), t.end(), '\n'));
}

// results.json without what differs between invocations of the same run.
json stable_results(const fs::path& dir) {
  json r = json::parse(read_text(dir / "results.json"));
  for (const char* k : {"elapsed_s", "prompt_tokens_per_s", "resumed_samples", "provenance"}) r.erase(k);
  return r;
}

class Resume : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    ModelConfig c = llama_preset("tiny");
    c.vocab_size = 1024;  // the embedded tokenizer's
    c.bos_token_id = 1;
    c.eos_token_ids = {2};
    write_random_llama(dir_->path() / "model", c, 13);
    fs::create_directories(dir_->path() / "docs");
    for (int i = 0; i < 4; ++i)
      write_text(dir_->path() / "docs" / ("d" + std::to_string(i) + ".txt"), document(i, 4 + 2 * i));
    std::string jsonl;
    for (int i = 0; i < 6; ++i)
      jsonl += json({{"id", "q" + std::to_string(i)},
                     {"doc", document(i, 3 + i)},
                     {"q", "What does grep print?"},
                     {"gold", {"lines", "the lines that contain a match"}}})
                   .dump() +
               "\n";
    write_text(dir_->path() / "qa.jsonl", jsonl);
    write_text(dir_->path() / "qa.jsonl.zst", zstd_compress(jsonl));
    const std::string head = "name: resume\nthreads: 1\nmodel: {path: " + (dir_->path() / "model").string() + "}\n"
                             "attention: {variant: lambda, local_branch: 16, global_branch: 2}\n"
                             "output: {dir: " + (dir_->path() / "unused").string() + "}\n";
    write_text(root() / "passkey.yaml",
               head + "task: {type: passkey, lengths: [128, 160], depths: [0, 1], samples: 2, max_new_tokens: 5, "
                      "tokenizer: " + embedded().string() + "}\n");
    write_text(root() / "generation.yaml",
               head + "data: {format: text, path: " + (root() / "docs").string() + ", tokenizer: " +
                   embedded().string() + "}\n"
                   "task: {type: generation, depths: [20, 60], max_new_tokens: 6, truncation_baseline: true, "
                   "baseline_length: 12}\n");
    write_text(root() / "qa.yaml",
               head + "data: {format: jsonl, path: " + (root() / "qa.jsonl").string() + ", tokenizer: " +
                   embedded().string() + "}\n"
                   "task:\n  type: qa\n  template: \"{doc}\\n\\nQuestion: {q}\\nAnswer:\"\n  context_field: doc\n"
                   "  answers_field: gold\n  id_field: id\n  max_length: 64\n  max_new_tokens: 8\n");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path root() { return dir_->path(); }

  // `lminf run <task>.yaml` into root()/out; returns the exit status (non-zero when killed).
  static int run(const std::string& task, const std::string& out, const std::vector<std::string>& sets = {},
                 int kill_after = -1, std::string* log = nullptr) {
    std::string cmd = kill_after >= 0 ? "LMINF_TEST_KILL_AFTER_RECORDS=" + std::to_string(kill_after) + " " : "";
    cmd += lminf_binary().string() + " run " + (root() / (task + ".yaml")).string() +
           " --set output.dir=" + (root() / out).string();
    for (const auto& s : sets) cmd += " --set " + s;
    return run_command(cmd, log);
  }

  // Uninterrupted run vs. killed after k samples, a torn line appended, then resumed: same files.
  static void expect_resume_equals_uninterrupted(const std::string& task, const std::string& journal,
                                                 const std::vector<std::string>& files, int k) {
    std::string log;
    ASSERT_EQ(run(task, task + "-u", {}, -1, &log), 0) << log;
    EXPECT_FALSE(fs::exists(root() / (task + "-u") / journal)) << "the journal is removed at the end";
    ASSERT_NE(run(task, task + "-k", {}, k, &log), 0) << "the run was not killed: " << log;
    const fs::path j = root() / (task + "-k") / journal;
    ASSERT_TRUE(fs::exists(j)) << log;
    EXPECT_EQ(count_lines(j), 1 + k) << "header + one line per sample";
    EXPECT_FALSE(fs::exists(root() / (task + "-k") / "results.json"));
    {
      std::ofstream torn(j, std::ios::app);
      torn << "{\"index\": 1, \"generated_ids\": [1";  // killed while writing a line
    }
    ASSERT_EQ(run(task, task + "-k", {}, -1, &log), 0) << log;
    EXPECT_NE(log.find("resuming"), std::string::npos) << log;
    EXPECT_NE(log.find("incomplete last line"), std::string::npos) << log;
    EXPECT_FALSE(fs::exists(j));
    for (const auto& f : files)
      EXPECT_EQ(read_text(root() / (task + "-u") / f), read_text(root() / (task + "-k") / f)) << f;
    EXPECT_EQ(stable_results(root() / (task + "-u")), stable_results(root() / (task + "-k")));
    EXPECT_EQ(json::parse(read_text(root() / (task + "-k") / "results.json"))["resumed_samples"].get<int64_t>(), k);
  }
  static TempDir* dir_;
};
TempDir* Resume::dir_ = nullptr;

// SIGTERM (raised by the journal once 2 samples are on disk) stops the run after that sample: status
// 143 and a message, nothing of the run in output.dir but its journal, then the same command resumes.
TEST_F(Resume, PasskeySigtermStopsAfterTheSampleAndResumes) {
  std::string log;
  ASSERT_EQ(run("passkey", "passkey-su", {}, -1, &log), 0) << log;
  const std::string cmd = "LMINF_TEST_KILL_SIGNAL=" + std::to_string(SIGTERM) + " LMINF_TEST_KILL_AFTER_RECORDS=2 " +
                          lminf_binary().string() + " run " + (root() / "passkey.yaml").string() +
                          " --set output.dir=" + (root() / "passkey-st").string();
  EXPECT_EQ(run_command(cmd, &log), 128 + SIGTERM) << log;
  EXPECT_NE(log.find("[rank 0] interrupted: interrupted by SIGTERM"), std::string::npos) << log;
  const fs::path dir = root() / "passkey-st";
  EXPECT_EQ(count_lines(dir / "samples.partial.jsonl"), 1 + 2) << "header + the two samples before the stop";
  for (const char* f : {"results.json", "samples.jsonl", "config.yaml", "niah.csv"}) EXPECT_FALSE(fs::exists(dir / f)) << f;
  ASSERT_EQ(run("passkey", "passkey-st", {}, -1, &log), 0) << log;
  EXPECT_NE(log.find("resuming"), std::string::npos) << log;
  EXPECT_EQ(read_text(root() / "passkey-su" / "samples.jsonl"), read_text(dir / "samples.jsonl"));
  EXPECT_EQ(stable_results(root() / "passkey-su"), stable_results(dir));
}

TEST_F(Resume, PasskeyKilledAndResumedEqualsUninterrupted) {
  expect_resume_equals_uninterrupted("passkey", "samples.partial.jsonl", {"samples.jsonl", "niah.csv"}, 3);
  // The heat map's gnuplot script is the same too (when gnuplot is installed).
  if (fs::exists(root() / "passkey-u" / "niah_heatmap.gp"))
    EXPECT_EQ(read_text(root() / "passkey-u" / "niah_heatmap.gp"), read_text(root() / "passkey-k" / "niah_heatmap.gp"));
}

TEST_F(Resume, GenerationKilledAndResumedEqualsUninterrupted) {
  expect_resume_equals_uninterrupted("generation", "generations.partial.jsonl", {"generations.jsonl"}, 2);
}

TEST_F(Resume, QaKilledAndResumedEqualsUninterrupted) {
  expect_resume_equals_uninterrupted("qa", "predictions.partial.jsonl", {"predictions.jsonl"}, 4);
}

TEST_F(Resume, AnotherConfigurationIsRefusedFlushEveryIsNot) {
  std::string log;
  ASSERT_NE(run("qa", "qa-c", {}, 2, &log), 0) << log;
  // A changed key that decides the numbers: refused, naming it; nothing is written.
  ASSERT_NE(run("qa", "qa-c", {"task.max_new_tokens=5"}, -1, &log), 0);
  EXPECT_NE(log.find("task.max_new_tokens: 8 -> 5"), std::string::npos) << log;
  EXPECT_NE(log.find("output.overwrite"), std::string::npos) << log;
  EXPECT_EQ(count_lines(root() / "qa-c" / "predictions.partial.jsonl"), 3);
  // flush_every (and name, threads, output) may change: resumed.
  ASSERT_NE(run("qa", "qa-c", {"task.flush_every=2", "threads=2", "name=other"}, 3, &log), 0) << log;
  EXPECT_NE(log.find("resuming"), std::string::npos) << log;
  EXPECT_GE(count_lines(root() / "qa-c" / "predictions.partial.jsonl"), 3);
  // overwrite starts over with the new configuration.
  ASSERT_EQ(run("qa", "qa-c", {"task.max_new_tokens=5", "output.overwrite=true"}, -1, &log), 0) << log;
  EXPECT_EQ(log.find("resuming"), std::string::npos) << log;
  const json r = json::parse(read_text(root() / "qa-c" / "results.json"));
  EXPECT_EQ(r["resumed_samples"].get<int64_t>(), 0);
  EXPECT_EQ(r["count"].get<int64_t>(), 6);
  EXPECT_FALSE(fs::exists(root() / "qa-c" / "predictions.partial.jsonl"));
  // A finished run is not resumed: the usual overwrite refusal.
  ASSERT_NE(run("qa", "qa-c", {"task.max_new_tokens=5"}, -1, &log), 0);
  EXPECT_NE(log.find("already exists"), std::string::npos) << log;
}

TEST_F(Resume, JournalOfAnotherDataParallelIsRefused) {
  std::string log;
  ASSERT_NE(run("generation", "gen-dp", {}, 1, &log), 0) << log;
  // As if an earlier run had two replicas: replica 1's journal is in the folder too.
  write_text(root() / "gen-dp" / "generations.partial.dp1.jsonl",
             json({{"schema", "lminf.record_journal"}, {"schema_version", 1}, {"data_parallel", 2}, {"replica", 1}})
                     .dump() + "\n");
  ASSERT_NE(run("generation", "gen-dp", {}, -1, &log), 0);
  EXPECT_NE(log.find("data_parallel 2"), std::string::npos) << log;
  ASSERT_EQ(run("generation", "gen-dp", {"output.overwrite=true"}, -1, &log), 0) << log;
  EXPECT_FALSE(fs::exists(root() / "gen-dp" / "generations.partial.dp1.jsonl"));
}

TEST_F(Resume, SweepResumesAPointThatHasAJournal) {
  write_text(root() / "qa_sweep.yaml", read_text(root() / "qa.yaml") + "sweep: {grid: {task.max_new_tokens: [4, 6]}}\n");
  std::string log;
  ASSERT_NE(run("qa_sweep", "sw", {}, 2, &log), 0) << log;  // killed inside the first point
  ASSERT_TRUE(fs::exists(root() / "sw" / "max_new_tokens-4" / "predictions.partial.jsonl")) << log;
  ASSERT_EQ(run("qa_sweep", "sw", {}, -1, &log), 0) << log;
  EXPECT_NE(log.find("resuming"), std::string::npos) << log;
  for (const auto& [point, resumed] : std::vector<std::pair<std::string, int64_t>>{{"max_new_tokens-4", 2},
                                                                                   {"max_new_tokens-6", 0}}) {
    const json r = json::parse(read_text(root() / "sw" / point / "results.json"));
    EXPECT_EQ(r["resumed_samples"].get<int64_t>(), resumed) << point;
    EXPECT_EQ(r["count"].get<int64_t>(), 6) << point;
    EXPECT_FALSE(fs::exists(root() / "sw" / point / "predictions.partial.jsonl")) << point;
  }
}

TEST_F(Resume, QaReadsJsonlZst) {
  std::string log;
  ASSERT_EQ(run("qa", "qa-plain", {}, -1, &log), 0) << log;
  ASSERT_EQ(run("qa", "qa-zst", {"data.format=jsonl.zst", "data.path=" + (root() / "qa.jsonl.zst").string()}, -1,
                &log), 0) << log;
  EXPECT_EQ(read_text(root() / "qa-plain" / "predictions.jsonl"), read_text(root() / "qa-zst" / "predictions.jsonl"));
  EXPECT_EQ(stable_results(root() / "qa-plain"), stable_results(root() / "qa-zst"));
  // data.max_sequences stops early in a compressed file as in a plain one.
  ASSERT_EQ(run("qa", "qa-zst2", {"data.format=jsonl.zst", "data.path=" + (root() / "qa.jsonl.zst").string(),
                                  "data.max_sequences=2"}, -1, &log), 0) << log;
  EXPECT_EQ(json::parse(read_text(root() / "qa-zst2" / "results.json"))["count"].get<int64_t>(), 2);
}

}  // namespace
}  // namespace lminf
