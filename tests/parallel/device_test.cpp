// parallel.communicator's choice for every combination of device, build, GPUs and ranks per node,
// and the host-staged communicator's pass-through of CPU tensors (its CUDA side runs in
// scripts/gpu_check.sh).
#include "parallel/device.h"

#include <gtest/gtest.h>

#include "parallel/host_staged_communicator.h"

namespace lminf {
namespace {

TEST(CommunicatorChoice, EveryCombination) {
  const at::Device cpu(at::kCPU), gpu(at::kCUDA, 0);
  // CPU models: MPI whatever the build; nccl refused.
  for (const char* kind : {"auto", "mpi"}) {
    CommunicatorChoice c = choose_communicator(kind, cpu, true, 0, 2);
    EXPECT_FALSE(c.nccl) << kind;
    EXPECT_EQ(c.problem, "") << kind;
  }
  EXPECT_NE(choose_communicator("nccl", cpu, true, 8, 1).problem.find("needs model.device: cuda"), std::string::npos);
  EXPECT_NE(choose_communicator("gloo", cpu, true, 8, 1).problem.find("not one of auto, mpi, nccl"), std::string::npos);
  // GPU, auto: NCCL only when built with it and every rank of the node has its own GPU.
  EXPECT_TRUE(choose_communicator("auto", gpu, true, 2, 2).nccl);
  EXPECT_TRUE(choose_communicator("auto", gpu, true, 8, 2).nccl);
  EXPECT_FALSE(choose_communicator("auto", gpu, true, 1, 2).nccl);  // two ranks share one GPU: host memory
  EXPECT_FALSE(choose_communicator("auto", gpu, false, 8, 2).nccl);
  EXPECT_EQ(choose_communicator("auto", gpu, false, 1, 2).problem, "");
  // GPU, mpi: always host memory.
  EXPECT_FALSE(choose_communicator("mpi", gpu, true, 8, 1).nccl);
  EXPECT_EQ(choose_communicator("mpi", gpu, true, 8, 1).problem, "");
  // GPU, nccl: refused without NCCL or with shared GPUs.
  EXPECT_EQ(choose_communicator("nccl", gpu, true, 2, 2).problem, "");
  EXPECT_NE(choose_communicator("nccl", gpu, false, 2, 2).problem.find("built without NCCL"), std::string::npos);
  EXPECT_NE(choose_communicator("nccl", gpu, true, 1, 2).problem.find("2 ranks on this node share 1 GPU"),
            std::string::npos);
}

TEST(CommunicatorChoice, CpuModelsKeepTheirGroup) {
  LocalCommunicator group;
  EXPECT_EQ(device_communicator(group, at::Device(at::kCPU), "auto"), nullptr);
  EXPECT_EQ(device_communicator(group, at::Device(at::kCPU), "mpi"), nullptr);
}

TEST(HostStagedCommunicator, CpuTensorsPassStraightThrough) {
  HostStagedCommunicator c(std::make_unique<LocalCommunicator>());
  EXPECT_EQ(c.name(), "local+host");
  EXPECT_EQ(c.size(), 1);
  at::Tensor t = at::arange(6, at::kFloat);
  c.all_reduce(t);
  c.broadcast(t, 0);
  EXPECT_TRUE(at::equal(t, at::arange(6, at::kFloat)));
  EXPECT_TRUE(at::equal(c.all_gather(t, 0), t));
  std::unique_ptr<Communicator> s = c.split(0, 0);
  EXPECT_EQ(s->name(), "local+host");
  s->barrier();
}

}  // namespace
}  // namespace lminf
