// Task ruler end to end: configs/embedded/ruler.yaml on the embedded model through the binary (a
// short run of its sweep), results.json recomputed from samples.jsonl, the grid and heat map; a run
// killed after k samples and resumed writes what an uninterrupted run writes; problems before any
// weight is read (too short a length names task.lengths; a missing haystack names task.haystack).
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "analysis/report/gnuplot.h"
#include "experiments/run/run_experiment.h"
#include "experiments/tasks/ruler_prompt.h"
#include "experiments/tasks/ruler_score.h"
#include "support/test_support.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using lminf::testing::error_of;
using lminf::testing::lminf_binary;
using lminf::testing::read_text;
using lminf::testing::run_command;
using lminf::testing::source_dir;
using lminf::testing::TempDir;
using lminf::testing::write_text;

std::vector<json> read_jsonl(const fs::path& p) {
  std::istringstream in(read_text(p));
  std::vector<json> out;
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

// results.json's table against one recomputed from samples.jsonl: each record's score from its own
// prediction and references by RULER's metric, then the cells, averages and effective length.
void expect_results_match_samples(const fs::path& out) {
  const json r = json::parse(read_text(out / "results.json"));
  json records = json::array();
  int64_t index = 0;
  for (const json& s : read_jsonl(out / "samples.jsonl")) {
    EXPECT_EQ(s["index"].get<int64_t>(), index++);
    const std::string pred = s["prediction"].get<std::string>();
    EXPECT_EQ(pred, ruler_postprocess(s["generated"].get<std::string>()));
    const auto refs = s["references"].get<std::vector<std::string>>();
    const bool part = ruler_task_def(s["task"].get<std::string>()).match_part;
    EXPECT_DOUBLE_EQ(s["score"].get<double>(), part ? string_match_part(pred, refs) : string_match_all(pred, refs));
    EXPECT_EQ(s["prompt_tokens"].get<int64_t>() + s["tokens_to_generate"].get<int64_t>(), s["length"].get<int64_t>());
    EXPECT_LE(s["generated_ids"].size(), s["tokens_to_generate"].get<size_t>());
    records.push_back(s);
  }
  EXPECT_EQ(r["samples"].get<int64_t>(), index);
  const json want = summarize_ruler(records, r["tasks"].get<std::vector<std::string>>(),
                                    r["lengths"].get<std::vector<int64_t>>(), r["effective_length"]["threshold"].get<double>());
  EXPECT_EQ(r["scores"], want["scores"]);
  EXPECT_EQ(r["averages"], want["averages"]);
  EXPECT_EQ(r["effective_length"], want["effective_length"]);
  // every cell once, with its sample count
  int64_t counted = 0;
  for (const auto& e : r["scores"]) counted += e["num_samples"].get<int64_t>();
  EXPECT_EQ(counted, index);
}

std::string config() { return (source_dir() / "configs" / "embedded" / "ruler.yaml").string(); }

TEST(RulerTask, EmbeddedConfigThroughTheBinary) {
  TempDir d;
  ASSERT_EQ(run_command("bash " + (source_dir() / "scripts" / "make_corpus.sh").string() + " " + (d / "corpus").string() +
                        " > /dev/null"),
            0);
  // the config's sweep, on fewer tasks, lengths, samples and generated tokens
  const std::string cmd = "cd " + source_dir().string() + " && " + lminf_binary().string() + " run " + config() + " --set output.dir=" + (d / "out").string() +
                          " --set task.haystack=" + (d / "corpus" / "heldout").string() +
                          " --set 'task.tasks=[niah_single_1, niah_single_2, vt, fwe]' --set 'task.lengths=[512, 640]'"
                          " --set task.num_samples=1 --set task.max_new_tokens=4";
  std::string log;
  ASSERT_EQ(run_command(cmd, &log), 0) << log;
  int runs = 0;
  for (const auto& e : fs::directory_iterator(d / "out")) {
    if (!e.is_directory()) continue;
    ++runs;
    SCOPED_TRACE(e.path().string());
    expect_results_match_samples(e.path());
    const json r = json::parse(read_text(e.path() / "results.json"));
    EXPECT_EQ(r["scores"].size(), 8u);
    EXPECT_EQ(r["averages"].size(), 2u);
    EXPECT_EQ(r["skipped"].size(), 0u);
    const auto csv = read_text(e.path() / "ruler.csv");
    EXPECT_EQ(csv.substr(0, csv.find('\n')), "length_index,task_index,length,task,num_samples,score,fraction");
    EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + 5 * 2) << "4 tasks and the average, 2 lengths";
    if (!find_gnuplot().empty()) EXPECT_GT(fs::file_size(e.path() / "ruler_heatmap.png"), 1000u);
    for (const auto& name : lminf::testing::dir_entries(e.path())) EXPECT_EQ(name.find(".tmp"), std::string::npos) << name;
  }
  EXPECT_EQ(runs, 3) << "vanilla, lambda, streaming";
  EXPECT_NE(log.find("effective length"), std::string::npos) << log;
}

json stable_results(const fs::path& dir) {
  json r = json::parse(read_text(dir / "results.json"));
  for (const char* k : {"elapsed_s", "prompt_tokens_per_s", "resumed_samples", "provenance"}) r.erase(k);
  return r;
}

TEST(RulerTask, KilledAndResumedEqualsUninterrupted) {
  TempDir d;
  write_text(d / "text.txt", read_text(source_dir() / "docs" / "architecture.md"));
  write_text(d / "r.yaml", "name: ruler-resume\nseed: 3\nmodel: {path: " +
                               (source_dir() / "embedded" / "lminf-info-1m").string() + "}\n"
                               "attention: {variant: lambda, local_branch: 64, global_branch: 4}\n"
                               "task: {type: ruler, tasks: [niah_single_3, niah_multikey_2, cwe], lengths: [900], "
                               "num_samples: 2, max_new_tokens: 3, haystack: " + (d / "text.txt").string() + "}\n"
                               "output: {dir: unused}\n");
  auto run = [&](const std::string& out, int kill_after, std::string* log) {
    const std::string env = kill_after >= 0 ? "LMINF_TEST_KILL_AFTER_RECORDS=" + std::to_string(kill_after) + " " : "";
    return run_command(env + lminf_binary().string() + " run " + (d / "r.yaml").string() + " --set output.dir=" +
                           (d / out).string(),
                       log);
  };
  std::string log;
  ASSERT_EQ(run("u", -1, &log), 0) << log;
  ASSERT_NE(run("k", 4, &log), 0) << "not killed: " << log;
  ASSERT_TRUE(fs::exists(d / "k" / "samples.partial.jsonl"));
  EXPECT_FALSE(fs::exists(d / "k" / "results.json"));
  ASSERT_EQ(run("k", -1, &log), 0) << log;
  EXPECT_NE(log.find("resuming"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(d / "k" / "samples.partial.jsonl"));
  for (const char* f : {"samples.jsonl", "ruler.csv"}) EXPECT_EQ(read_text(d / "u" / f), read_text(d / "k" / f)) << f;
  EXPECT_EQ(stable_results(d / "u"), stable_results(d / "k"));
  EXPECT_EQ(json::parse(read_text(d / "k" / "results.json"))["resumed_samples"].get<int64_t>(), 4);
  expect_results_match_samples(d / "k");
}

TEST(RulerTask, ProblemsBeforeWeights) {
  TempDir d;
  auto err = [&](const std::string& task) {
    write_text(d / "r.yaml", "name: r\nmodel: {path: " + (source_dir() / "embedded" / "lminf-info-1m").string() +
                                 "}\ntask: " + task + "\noutput: {dir: " + (d / "out").string() + "}\n");
    return error_of([&] { load_experiment((d / "r.yaml").string(), {}, 1); });
  };
  const std::string short_one = err("{type: ruler, tasks: [vt], lengths: [100], vt_example_length: 0}");
  EXPECT_NE(short_one.find("task.lengths: 100 tokens cannot hold task vt"), std::string::npos) << short_one;
  EXPECT_NE(short_one.find("use lengths >= "), std::string::npos) << short_one;
  EXPECT_NE(err("{type: ruler, tasks: [vt], lengths: [2000], vt_example_length: 10}").find("task.vt_example_length = 10"),
            std::string::npos);
  EXPECT_NE(err("{type: ruler, tasks: [niah_single_2], lengths: [2000], haystack: /nonexistent}").find("task.haystack"),
            std::string::npos);
  EXPECT_NE(err("{type: ruler, tasks: [niah_single_1], lengths: [2000], words_file: /nonexistent}").find("wamerican"),
            std::string::npos);
  EXPECT_NE(err("{type: ruler, tasks: [nah_single_1], lengths: [2000]}").find("niah_single_1"), std::string::npos);
  EXPECT_NE(err("{type: ruler, tasks: [fwe], lengths: [2000], fwe_alpha: 1}").find("task.fwe_alpha"), std::string::npos);
  EXPECT_NE(err("{type: ruler, tasks: [qa_1], lengths: [2000], squad: /nonexistent.json}").find("task.squad"),
            std::string::npos);
  EXPECT_EQ(err("{type: ruler, tasks: [qa_1, qa_2, vt], lengths: [2000]}"), "") << "qa without files: skipped, no error";
  EXPECT_EQ(err("{type: ruler, tasks: [niah_single_1, vt, cwe, fwe], lengths: [4096, 8000]}"), "");
}

}  // namespace
}  // namespace lminf
