// What `lminf run` leaves in output.dir when it fails or replaces an earlier run
// (experiments/outputs/output_stage.h): a failed overwrite run leaves the earlier outputs untouched
// (config.yaml included); a completed overwrite run removes the earlier outputs it does not write
// (a factor dump); a full disk and a read-only folder give clear errors and lose nothing already
// written (on a small tmpfs; skipped where mounting is not permitted).
#include <gtest/gtest.h>

#include <sys/mount.h>
#include <sys/statvfs.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>

#include <nlohmann/json.hpp>

#include "experiments/run/run_experiment.h"
#include "framework/io/h5_file.h"
#include "models/random_checkpoint.h"
#include "support/test_support.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using lminf::testing::error_of;
using lminf::testing::read_text;
using lminf::testing::TempDir;
using lminf::testing::write_text;

class OutputFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    write_random_llama(dir_ / "model", llama_preset("tiny"), 3);
    write_text(dir_ / "data.ids", "5 6 7 8 9 10 11\n12 13 14 15 16 17 18 19 20 21\n20 21 22\n");
  }
  void write_yaml(const fs::path& out, const std::string& extra) const {
    write_text(dir_ / "exp.yaml", "name: t\n"
                                  "model: {path: " + (dir_ / "model").string() + ", dtype: float32}\n"
                                  "attention: {variant: vanilla, block_size: 16}\n"
                                  "data: {format: ids, path: " + (dir_ / "data.ids").string() + "}\n"
                                  "task: {type: perplexity, max_length: 64}\n"
                                  "output: {dir: " + out.string() + "}\n" + extra);
  }
  void run(const fs::path& out, const std::string& extra = "", const std::vector<std::string>& sets = {}) {
    write_yaml(out, extra);
    LocalCommunicator world;
    auto exp = load_experiment((dir_ / "exp.yaml").string(), sets, 1);
    run_experiment(exp, world);
  }
  // Every file of a folder with its bytes.
  static std::map<std::string, std::string> snapshot(const fs::path& dir) {
    std::map<std::string, std::string> m;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.is_regular_file()) m[fs::relative(e.path(), dir).string()] = read_text(e.path());
    return m;
  }
  TempDir dir_;
};

TEST_F(OutputFolder, AFailedOverwriteRunLeavesTheEarlierOutputsUntouched) {
  const fs::path out = dir_ / "out";
  run(out);
  const auto before = snapshot(out);
  ASSERT_TRUE(before.count("results.json") && before.count("config.yaml") && before.count("token_nll.h5"));
  // The run starts (its config.yaml is written), then fails loading the model.
  write_yaml(out, "seed: 99\n");
  LocalCommunicator world;
  auto exp = load_experiment((dir_ / "exp.yaml").string(), {"output.overwrite=true"}, 1);
  fs::rename(dir_ / "model", dir_ / "moved");
  EXPECT_NE(error_of([&] { run_experiment(exp, world); }), "");
  fs::rename(dir_ / "moved", dir_ / "model");
  auto after = snapshot(out);
  for (auto it = after.begin(); it != after.end();)
    it = it->first.rfind(".lminf-staging/", 0) == 0 ? after.erase(it) : std::next(it);
  EXPECT_EQ(after, before);  // config.yaml is the earlier run's, beside its results.json
  EXPECT_EQ(read_text(out / "config.yaml").find("seed: 99"), std::string::npos);
  // The next run replaces everything and cleans the stage.
  run(out, "seed: 99\n", {"output.overwrite=true"});
  EXPECT_NE(read_text(out / "config.yaml").find("seed: 99"), std::string::npos);
  EXPECT_FALSE(fs::exists(out / ".lminf-staging"));
}

TEST_F(OutputFolder, AnOverwriteRunRemovesTheEarlierOutputsItDoesNotWrite) {
  const fs::path out = dir_ / "out";
  run(out, "dump: {factors: [entropy], file: f.h5}\n");
  ASSERT_TRUE(fs::exists(out / "f.h5"));
  run(out, "", {"output.overwrite=true"});
  EXPECT_FALSE(fs::exists(out / "f.h5"));
  EXPECT_TRUE(fs::exists(out / "results.json"));
  const auto rec = nlohmann::json::parse(read_text(out / ".lminf-outputs.json"));
  EXPECT_EQ(rec["outputs"], (nlohmann::json{"config.yaml", "results.json", "token_nll.h5"}));
  // A folder from before staging (no record): this task's outputs and the default dump are the earlier ones.
  fs::remove(out / ".lminf-outputs.json");
  write_text(out / "factors.h5", "an earlier run's dump");
  run(out, "", {"output.overwrite=true"});
  EXPECT_FALSE(fs::exists(out / "factors.h5"));
  // Without overwrite an earlier run is still refused.
  EXPECT_NE(error_of([&] { run(out); }).find("already exists from an earlier run"), std::string::npos);
}

// A tmpfs of `size` mounted on `at` for the test's life (empty path() when mounting is not permitted).
class Tmpfs {
 public:
  Tmpfs(const fs::path& at, const std::string& size) : at_(at) {
    fs::create_directories(at);
    if (::mount("tmpfs", at.c_str(), "tmpfs", 0, ("size=" + size).c_str()) != 0) at_.clear();
  }
  ~Tmpfs() {
    if (!at_.empty()) ::umount2(at_.c_str(), MNT_DETACH);
  }
  bool remount(bool read_only) const {
    return ::mount("tmpfs", at_.c_str(), "tmpfs", MS_REMOUNT | (read_only ? MS_RDONLY : 0), nullptr) == 0;
  }
  const fs::path& path() const { return at_; }

 private:
  fs::path at_;
};

TEST_F(OutputFolder, AFullDiskFailsClearlyAndKeepsTheEarlierOutputs) {
  Tmpfs disk(dir_ / "disk", "2m");
  if (disk.path().empty()) GTEST_SKIP() << "mounting a tmpfs is not permitted here";
  const fs::path out = disk.path() / "out";
  run(out);
  const auto before = snapshot(out);
  // Fill the disk up to two pages: config.yaml fits, token_nll.h5 does not.
  struct statvfs st {};
  ASSERT_EQ(::statvfs(disk.path().c_str(), &st), 0);
  const uint64_t free_bytes = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  ASSERT_GT(free_bytes, 16384u);
  {
    std::ofstream filler(disk.path() / "filler", std::ios::binary);
    const std::string block(4096, 'x');
    for (uint64_t left = free_bytes - 8192; left >= block.size(); left -= block.size()) filler << block;
  }
  std::string msg = error_of([&] { run(out, "seed: 5\n", {"output.overwrite=true"}); });
  EXPECT_NE(msg.find("No space left on device"), std::string::npos) << msg;
  auto after = snapshot(out);
  for (auto it = after.begin(); it != after.end();)
    it = it->first.rfind(".lminf-staging/", 0) == 0 ? after.erase(it) : std::next(it);
  EXPECT_EQ(after, before);
  // Space freed, the same command completes.
  fs::remove(disk.path() / "filler");
  run(out, "seed: 5\n", {"output.overwrite=true"});
  EXPECT_NE(read_text(out / "config.yaml").find("seed: 5"), std::string::npos);
}

// A resumable run that fills the disk mid-run stops with the OS error and keeps what it flushed:
// once there is space the same command resumes and ends with the NLLs of an uninterrupted run.
TEST_F(OutputFolder, AFullDiskMidStreamKeepsTheResumeState) {
  Tmpfs disk(dir_ / "disk", "1m");
  if (disk.path().empty()) GTEST_SKIP() << "mounting a tmpfs is not permitted here";
  const std::string task = "task: {type: streaming_perplexity, chunk_size: 32, repeat: true, flush_every: 512, "
                           "max_tokens: 40000, progress_interval: 100}\n";
  auto streaming = [&](const fs::path& out) {
    write_yaml(out, "");
    std::string y = read_text(dir_ / "exp.yaml");
    y.replace(y.find("task: {type: perplexity, max_length: 64}\n"), std::string("task: {type: perplexity, max_length: 64}\n").size(), task);
    y.replace(y.find("variant: vanilla"), std::string("variant: vanilla").size(), "variant: streaming, start_size: 2, recent_size: 20");
    write_text(dir_ / "exp.yaml", y);
    LocalCommunicator world;
    auto exp = load_experiment((dir_ / "exp.yaml").string(), {}, 1);
    run_experiment(exp, world);
  };
  streaming(dir_ / "whole");
  // 40000 NLLs are 160 KB: leave about 100 KB free, so the log or a state write runs out mid-stream.
  struct statvfs st {};
  ASSERT_EQ(::statvfs(disk.path().c_str(), &st), 0);
  const uint64_t free_bytes = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  {
    std::ofstream filler(disk.path() / "filler", std::ios::binary);
    const std::string block(4096, 'x');
    for (uint64_t left = free_bytes - 100 * 1024; left >= block.size(); left -= block.size()) filler << block;
  }
  const fs::path out = disk.path() / "out";
  const std::string msg = error_of([&] { streaming(out); });
  EXPECT_NE(msg.find("No space left on device"), std::string::npos) << msg;
  ASSERT_TRUE(fs::exists(out / "stream_state.h5"));
  EXPECT_FALSE(fs::exists(out / "token_nll.h5"));
  fs::remove(disk.path() / "filler");
  streaming(out);
  const at::Tensor a = H5Reader(dir_ / "whole" / "token_nll.h5").read("token_nll");
  const at::Tensor b = H5Reader(out / "token_nll.h5").read("token_nll");
  ASSERT_EQ(b.size(0), 40000);
  EXPECT_TRUE(at::equal(a, b));
  EXPECT_GT(nlohmann::json::parse(read_text(out / "results.json"))["resumed_from"].get<int64_t>(), 0);
}

TEST_F(OutputFolder, AReadOnlyFolderFailsClearlyAndKeepsItsOutputs) {
  Tmpfs disk(dir_ / "ro", "1m");
  if (disk.path().empty()) GTEST_SKIP() << "mounting a tmpfs is not permitted here";
  const fs::path out = disk.path() / "out";
  run(out);
  const auto before = snapshot(out);
  ASSERT_TRUE(disk.remount(true));
  const std::string msg = error_of([&] { run(out, "", {"output.overwrite=true"}); });
  EXPECT_NE(msg.find("output.dir"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Read-only file system"), std::string::npos) << msg;
  EXPECT_EQ(snapshot(out), before);
  ASSERT_TRUE(disk.remount(false));
}

}  // namespace
}  // namespace lminf
