// MpiRuntime without a launcher: a world of one rank and MPI never initialised (start-up time). The
// mpirun side (launched_by_mpirun, a real MPI world) runs in tests/parallel/mpi.
#include <gtest/gtest.h>

#include <cstdlib>

#include "parallel/mpi_communicator.h"

namespace lminf {
namespace {

TEST(MpiRuntime, WithoutMpirunTheWorldIsOneLocalRankAndMpiStaysUninitialised) {
  if (launched_by_mpirun()) GTEST_SKIP() << "this process was started by mpirun";
  MpiRuntime rt;
  std::unique_ptr<Communicator> w = rt.world();
  EXPECT_EQ(w->name(), "local");
  EXPECT_EQ(w->rank(), 0);
  EXPECT_EQ(w->size(), 1);
  EXPECT_FALSE(rt.initialized());
  EXPECT_EQ(rt.world_size(), 1);
  rt.abort_job(3);  // one rank: returns
}

TEST(MpiRuntime, LauncherEnvironmentIsRecognised) {
  if (launched_by_mpirun()) GTEST_SKIP() << "this process was started by mpirun";
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"}) {
    ::setenv(v, "1", 1);
    EXPECT_TRUE(launched_by_mpirun()) << v;
    ::unsetenv(v);
  }
  EXPECT_FALSE(launched_by_mpirun());
}

}  // namespace
}  // namespace lminf
