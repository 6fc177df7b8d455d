// A rank of `mpirun -np 2 lminf run` killed mid-run (SIGKILL, no chance to call MPI_Abort) while its
// peer waits in a collective: the whole job ends within seconds with a message naming the dead rank
// and a non-zero status, leaving the resume state, from which the same command completes.
#include <gtest/gtest.h>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "framework/io/h5_file.h"
#include "support/test_support.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using lminf::testing::read_text;
using lminf::testing::run_command;
using lminf::testing::TempDir;
using lminf::testing::write_text;

// The pid of the child of `parent` whose environment says OMPI_COMM_WORLD_RANK=rank (-1: none yet).
pid_t rank_pid(pid_t parent, int rank) {
  const std::string want = "OMPI_COMM_WORLD_RANK=" + std::to_string(rank);
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid != parent) continue;
    std::ifstream env(e.path() / "environ", std::ios::binary);
    std::string var;
    while (std::getline(env, var, '\0'))
      if (var == want) return static_cast<pid_t>(std::stol(name));
  }
  return -1;
}

// Whether process `pid` runs (a zombie does not).
bool alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const size_t close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

TEST(MpirunRankFault, AKilledRankEndsTheJobWithinSeconds) {
  TempDir d;
  ASSERT_EQ(run_command(lminf::testing::lminf_binary().string() + " random-model tiny " + (d / "model").string()), 0);
  std::string ids;
  for (int doc = 0; doc < 12; ++doc) {
    for (int i = 0; i < 20 + doc; ++i) ids += (i ? " " : "") + std::to_string(3 + (doc * 31 + i * 7) % 200);
    ids += "\n";
  }
  write_text(d / "docs.ids", ids);
  write_text(d / "s.yaml", "name: s\nthreads: 1\nmodel: {path: " + (d / "model").string() + "}\n"
                           "attention: {variant: streaming, start_size: 2, recent_size: 20, block_size: 16}\n"
                           "data: {format: ids, path: " + (d / "docs.ids").string() + "}\n"
                           "task: {type: streaming_perplexity, chunk_size: 2, repeat: true, flush_every: 16, "
                           "max_tokens: 1500}\n"
                           "parallel: {tensor_parallel: 2}\n"
                           "output: {dir: " + (d / "out").string() + "}\n");
  const std::string cmd = LMINF_MPIEXEC " --allow-run-as-root --oversubscribe -np 2 " +
                          lminf::testing::lminf_binary().string() + " run " + (d / "s.yaml").string();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + cmd + " >" + (d / "log").string() + " 2>&1").c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  // Once the stream runs (some state on disk), SIGKILL rank 1.
  pid_t victim = -1, survivor = -1;
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(90)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    try {
      if (fs::exists(d / "out" / "stream_state.h5") && H5Reader(d / "out" / "stream_state.h5").attr_int("/", "tokens") > 64) {
        victim = rank_pid(pid, 1);
        survivor = rank_pid(pid, 0);
        break;
      }
    } catch (const Error&) {
    }
  }
  if (victim <= 0) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    FAIL() << "rank 1 not found running: " << read_text(d / "log");
  }
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  const auto killed = std::chrono::steady_clock::now();
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() - killed > std::chrono::seconds(60)) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      FAIL() << "mpirun still running 60 s after rank 1 was killed: " << read_text(d / "log");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  const std::string log = read_text(d / "log");
  EXPECT_LT(took, 15.0) << log;
  EXPECT_FALSE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << log;
  EXPECT_NE(log.find("process rank 1"), std::string::npos) << log;  // mpirun names the dead rank
  // Rank 0, which was waiting for rank 1 in a collective, is gone too.
  for (int i = 0; i < 100 && survivor > 0 && alive(survivor); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(survivor > 0 && alive(survivor)) << "rank 0 still alive";
  EXPECT_FALSE(fs::exists(d / "out" / "results.json"));
  std::cout << "mpirun ended " << took << " s after rank 1 was killed; its message:\n";
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);)
    if (line.find("rank 1") != std::string::npos) std::cout << "  " << line << "\n";
  // The resume state is whole: the same command finishes the stream.
  std::string out;
  ASSERT_EQ(run_command("timeout 300 " + cmd, &out), 0) << out;
  EXPECT_NE(out.find("resuming"), std::string::npos) << out;
  EXPECT_EQ(H5Reader(d / "out" / "token_nll.h5").read("token_nll").size(0), 1500);
}

}  // namespace
}  // namespace lminf
