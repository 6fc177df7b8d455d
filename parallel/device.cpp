#include "parallel/device.h"

#include <algorithm>
#include <cstdlib>

#include "framework/core/error.h"
#include "parallel/host_staged_communicator.h"

#ifdef LMINF_WITH_NCCL
#include "parallel/nccl_communicator.h"
#endif

namespace lminf {

int local_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"})
    if (const char* v = std::getenv(name)) return std::atoi(v);
  return 0;
}

namespace {
// The N of "cuda:N", or -1 for "cuda"; nullopt when the text is neither.
std::optional<int> cuda_index(const std::string& text) {
  if (text == "cuda") return -1;
  if (text.rfind("cuda:", 0) != 0) return std::nullopt;
  const std::string digits = text.substr(5);
  if (digits.empty() || digits.size() > 4 || digits.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::atoi(digits.c_str());
}
}  // namespace

std::optional<at::Device> parse_device(const std::string& text, std::string& problem) {
  if (text == "cpu") return at::Device(at::kCPU);
  const std::optional<int> parsed = cuda_index(text);
  if (!parsed) {
    problem = "model.device: \"" + text + "\" is not a device (use cpu, cuda or cuda:N)";
    return std::nullopt;
  }
  if (!at::hasCUDA()) {
    problem = "model.device: " + text +
              " asked for, but this lminf is built against a CPU-only libtorch or sees no GPU (build against a "
              "CUDA-enabled libtorch with CMAKE_PREFIX_PATH, see docs/parallel.md; or set model.device: cpu)";
    return std::nullopt;
  }
  const int n = static_cast<int>(at::getNumGPUs());
  const int index = *parsed < 0 ? local_rank() % std::max(n, 1) : *parsed;
  if (index >= n) {
    problem = "model.device: " + text + " but this process sees " + std::to_string(n) + " GPU(s)";
    return std::nullopt;
  }
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
}

int local_size() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"})
    if (const char* v = std::getenv(name)) return std::max(1, std::atoi(v));
  return 1;
}

bool built_with_nccl() {
#ifdef LMINF_WITH_NCCL
  return true;
#else
  return false;
#endif
}

CommunicatorChoice choose_communicator(const std::string& kind, const at::Device& device, bool with_nccl, int gpus,
                                       int local_ranks) {
  CommunicatorChoice c;
  if (kind != "auto" && kind != "mpi" && kind != "nccl") {
    c.problem = "parallel.communicator: \"" + kind + "\" is not one of auto, mpi, nccl";
    return c;
  }
  if (!device.is_cuda()) {
    if (kind == "nccl")
      c.problem = "parallel.communicator: nccl needs model.device: cuda (a CPU model communicates over MPI: use auto or mpi)";
    return c;
  }
  if (kind == "mpi") return c;
  const bool own_gpu = gpus >= local_ranks;
  if (kind == "auto") {
    c.nccl = with_nccl && own_gpu;
    return c;
  }
  c.nccl = true;
  if (!with_nccl)
    c.problem = "parallel.communicator: nccl, but this lminf was built without NCCL (docs/parallel.md; or use mpi)";
  else if (!own_gpu)
    c.problem = "parallel.communicator: nccl needs a GPU per rank, and " + std::to_string(local_ranks) +
                " ranks on this node share " + std::to_string(gpus) + " GPU(s) (use mpi: host memory)";
  return c;
}

CommunicatorChoice choose_communicator(const std::string& kind, const at::Device& device) {
  const int gpus = device.is_cuda() ? static_cast<int>(at::getNumGPUs()) : 0;
  return choose_communicator(kind, device, built_with_nccl(), gpus, local_size());
}

std::unique_ptr<Communicator> device_communicator(Communicator& group, const at::Device& device,
                                                  const std::string& kind) {
  if (!device.is_cuda()) return nullptr;
  const CommunicatorChoice c = choose_communicator(kind, device);
  if (!c.problem.empty()) fail(c.problem);
#ifdef LMINF_WITH_NCCL
  if (c.nccl) return std::make_unique<NcclCommunicator>(group, device.index());
#endif
  return std::make_unique<HostStagedCommunicator>(group);
}

}  // namespace lminf
