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

// Why `device` cannot run `tensor_parallel` ranks with this build ("" when it can): a CUDA device
// with tensor_parallel > 1 needs the NCCL communicator.
std::string device_parallel_problem(const at::Device& device, int64_t tensor_parallel);

// The communicator the model's tensor-parallel collectives use on `device`: NCCL over the ranks of
// `group` for a CUDA device (when built with NCCL), null otherwise (use `group` itself).
std::unique_ptr<Communicator> device_communicator(Communicator& group, const at::Device& device);

}  // namespace lminf
