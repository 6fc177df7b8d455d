// Where a rank computes: `model.device` text -> an at::Device, and the communicator a GPU
// tensor-parallel group needs. The only place outside the NCCL files that knows whether lminf was
// built with NCCL (LMINF_WITH_NCCL).
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <optional>
#include <string>

#include "parallel/communicator.h"

namespace lminf {

// This process's node-local rank under mpirun or Slurm (0 without a launcher).
int local_rank();

// "cpu", "cuda" (GPU local_rank mod the GPUs this process sees) or "cuda:N". On a text that is not a
// device, or a device this process cannot use, returns nullopt and sets `problem` (a message that
// names model.device and the fix).
std::optional<at::Device> parse_device(const std::string& text, std::string& problem);

// This node's number of ranks under mpirun or Slurm (1 without a launcher).
int local_size();
// Whether this lminf was built with NCCL.
bool built_with_nccl();

// parallel.communicator: how a CUDA model's tensor-parallel collectives travel.
//   auto  NCCL when this lminf has it and the node has a GPU for every rank; MPI through host memory otherwise
//   mpi   MPI, CUDA tensors staged through host memory (several ranks may share one GPU)
//   nccl  NCCL (each rank its own GPU)
// On a CPU model every choice but nccl means MPI.
struct CommunicatorChoice {
  bool nccl = false;    // NCCL; else the MPI group, through host memory for CUDA tensors
  std::string problem;  // why the choice cannot run ("" when it can)
};
// Decided from the arguments alone (tests call it with every combination).
CommunicatorChoice choose_communicator(const std::string& kind, const at::Device& device, bool with_nccl, int gpus,
                                       int local_ranks);
// The same for this process (built_with_nccl, the GPUs it sees, local_size).
CommunicatorChoice choose_communicator(const std::string& kind, const at::Device& device);

// The communicator the model's tensor-parallel collectives use on `device` with parallel.communicator
// `kind`: NCCL over the ranks of `group`, or `group` through host memory for a CUDA device; null on
// the CPU (use `group` itself).
std::unique_ptr<Communicator> device_communicator(Communicator& group, const at::Device& device,
                                                  const std::string& kind = "auto");

}  // namespace lminf
