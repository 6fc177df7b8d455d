#include "parallel/device.h"

#include <algorithm>
#include <cstdlib>

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

std::string device_parallel_problem(const at::Device& device, int64_t tensor_parallel) {
#ifdef LMINF_WITH_NCCL
  (void)device;
  (void)tensor_parallel;
  return "";
#else
  if (!device.is_cuda() || tensor_parallel <= 1) return "";
  return "model.device: cuda with parallel.tensor_parallel > 1 needs the NCCL communicator; this lminf was built "
         "without NCCL (docs/parallel.md)";
#endif
}

std::unique_ptr<Communicator> device_communicator(Communicator& group, const at::Device& device) {
#ifdef LMINF_WITH_NCCL
  if (device.is_cuda()) return std::make_unique<NcclCommunicator>(group, device.index());
#else
  (void)group;
  (void)device;
#endif
  return nullptr;
}

}  // namespace lminf
