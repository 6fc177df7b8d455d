// The NCCL communicator on CUDA tensors (label gpu; built only with a CUDA-enabled libtorch and NCCL):
// under mpirun -np N with N GPUs (one per rank), each collective on CUDA tensors equals the MPI
// communicator's result on the same CPU tensors; CPU tensors pass through to MPI. Exit 77 without a GPU.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include <cstdio>

#include "parallel/mpi_communicator.h"
#include "parallel/nccl_communicator.h"

namespace lminf {
namespace {

Communicator* g_mpi = nullptr;   // test harness only
Communicator* g_nccl = nullptr;

at::Tensor input_of(int r, at::ScalarType dt) {
  at::Generator g = at::detail::createCPUGenerator(7 + static_cast<uint64_t>(r));
  return (at::randn({33, 5}, g) * 8).round().to(dt);  // integers: sums exact in every dtype
}

TEST(NcclCommunicator, AllReduceEqualsMpi) {
  for (at::ScalarType dt : {at::kFloat, at::kDouble, at::kBFloat16, at::kHalf, at::kLong}) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMax}) {
      at::Tensor cpu = input_of(g_mpi->rank(), dt);
      at::Tensor gpu = cpu.to(at::kCUDA);
      g_mpi->all_reduce(cpu, op);
      g_nccl->all_reduce(gpu, op);
      EXPECT_TRUE(at::equal(gpu.cpu(), cpu)) << c10::toString(dt);
    }
  }
}

TEST(NcclCommunicator, AllGatherAndBroadcastEqualMpi) {
  for (int64_t dim : {0, 1}) {
    at::Tensor cpu = input_of(g_mpi->rank(), at::kBFloat16);
    EXPECT_TRUE(at::equal(g_nccl->all_gather(cpu.to(at::kCUDA), dim).cpu(), g_mpi->all_gather(cpu, dim)));
  }
  at::Tensor cpu = input_of(g_mpi->rank(), at::kFloat), gpu = cpu.to(at::kCUDA);
  g_mpi->broadcast(cpu, 0);
  g_nccl->broadcast(gpu, 0);
  EXPECT_TRUE(at::equal(gpu.cpu(), cpu));
  g_nccl->barrier();
}

TEST(NcclCommunicator, CpuTensorsGoThroughMpiAndSplitWorks) {
  at::Tensor t = at::ones({4});
  g_nccl->all_reduce(t, ReduceOp::kSum);
  EXPECT_EQ(t[0].item<float>(), static_cast<float>(g_nccl->size()));
  auto sub = g_nccl->split(g_nccl->rank() % 2, g_nccl->rank());
  at::Tensor x = at::ones({3}, at::kCUDA);
  sub->all_reduce(x, ReduceOp::kSum);
  EXPECT_EQ(x.cpu()[0].item<float>(), static_cast<float>(sub->size()));
}

}  // namespace
}  // namespace lminf

int main(int argc, char** argv) {
  lminf::MpiRuntime mpi;
  auto world = mpi.world();
  if (!at::hasCUDA() || lminf::NcclGroup::device_count() < world->size()) {
    std::printf("needs one GPU per rank (%d visible, %d ranks): skipped\n", lminf::NcclGroup::device_count(),
                world->size());
    return 77;
  }
  lminf::NcclCommunicator nccl(*world, world->rank());
  lminf::g_mpi = world.get();
  lminf::g_nccl = &nccl;
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
