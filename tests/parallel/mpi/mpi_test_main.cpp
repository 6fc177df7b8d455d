// main of the MPI test binary: MPI up (through the same MpiRuntime as lminf's main), one thread per
// rank (ranks share the cores), GoogleTest's printer on rank 0 only, failures printed by every rank.
//
//   mpirun --allow-run-as-root --oversubscribe -np 4 build/tests/parallel_mpi_tests
//   ... parallel_mpi_tests --lminf-throw-on-rank=1   deliberately throws on rank 1 in the middle of
//       collectives and handles it as lminf's main does (print "[rank r] error", abort the job): the
//       launch tests check that the job ends promptly instead of hanging.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "framework/core/error.h"
#include "parallel/mpi_communicator.h"
#include "tests/parallel/mpi/mpi_world.h"

namespace lminf::testing {
namespace {

std::unique_ptr<Communicator> g_world;  // test harness only: the library never holds a global communicator

// Prints failures of ranks other than 0 (whose default printer is removed), tagged with the rank.
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: failure\n%s\n", rank_, r.file_name() ? r.file_name() : "?",
                 r.line_number(), r.summary());
  }

 private:
  int rank_;
};

void throw_on_rank(Communicator& world, int bad_rank) {
  for (int step = 0; step < 4; ++step) {
    at::Tensor t = at::ones({8});
    if (step == 2 && world.rank() == bad_rank)
      fail("deliberate failure on rank ", bad_rank, " at step ", step, " while the others wait in all_reduce");
    world.all_reduce(t, ReduceOp::kSum);
  }
}

}  // namespace

Communicator& mpi_world() { return *g_world; }

}  // namespace lminf::testing

int main(int argc, char** argv) {
  lminf::MpiRuntime mpi;
  int status = 1;
  try {
    lminf::testing::g_world = mpi.world();
    at::set_num_threads(1);
    const int rank = lminf::testing::g_world->rank();
    const char* flag = "--lminf-throw-on-rank=";
    for (int i = 1; i < argc; ++i) {
      if (std::strncmp(argv[i], flag, std::strlen(flag)) == 0) {
        lminf::testing::throw_on_rank(*lminf::testing::g_world, std::atoi(argv[i] + std::strlen(flag)));
        std::printf("[rank %d] no rank threw\n", rank);
        lminf::testing::g_world.reset();
        return 0;
      }
    }
    ::testing::InitGoogleTest(&argc, argv);
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    if (rank != 0) {
      delete listeners.Release(listeners.default_result_printer());
      listeners.Append(new lminf::testing::RankFailurePrinter(rank));
    }
    status = RUN_ALL_TESTS();
    // One verdict for the job: rank 0 reports failures seen on any rank.
    at::Tensor failed = at::tensor({static_cast<int64_t>(status != 0)}, at::kLong);
    lminf::testing::g_world->all_reduce(failed, lminf::ReduceOp::kSum);
    if (rank == 0 && failed.item<int64_t>() > 0)
      std::fprintf(stderr, "%lld rank(s) had failures (see [rank r] lines above)\n",
                   static_cast<long long>(failed.item<int64_t>()));
    status = failed.item<int64_t>() > 0 ? 1 : 0;
    lminf::testing::g_world.reset();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[rank %d] error: %s\n", mpi.world_rank(), e.what());
    mpi.abort_job(1);
    return 1;
  }
  return status;
}
