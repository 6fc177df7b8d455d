// NCCL on raw device pointers: the part of the NCCL communicator that needs only the CUDA runtime
// and NCCL (no libtorch), so it compiles wherever the CUDA toolkit and NCCL are installed, also next
// to a CPU-only libtorch. nccl_communicator.* puts at::Tensor and the CUDA stream of libtorch on top.
// No NCCL or CUDA header leaks from here: streams travel as void* (a cudaStream_t).
#pragma once

#include <array>
#include <cstddef>
#include <string>

namespace lminf {

enum class NcclDtype { kFloat32, kFloat64, kBFloat16, kFloat16, kInt64, kInt32, kInt8, kUInt8 };
enum class NcclReduce { kSum, kMax };

class NcclGroup {
 public:
  static constexpr size_t kIdBytes = 128;  // NCCL_UNIQUE_ID_BYTES
  using UniqueId = std::array<char, kIdBytes>;

  // Made on one rank (rank 0) and sent to the others over MPI before they construct the group.
  static UniqueId new_unique_id();
  // "NCCL 2.28.9, CUDA runtime 13000", for logs and provenance.
  static std::string version_string();
  // CUDA devices visible to this process (0 when there is no driver or no GPU).
  static int device_count();

  // Collective over the `size` ranks that hold `id`: binds this rank to CUDA device `device`.
  NcclGroup(const UniqueId& id, int rank, int size, int device);
  ~NcclGroup();
  NcclGroup(const NcclGroup&) = delete;
  NcclGroup& operator=(const NcclGroup&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  int device() const { return device_; }

  // Enqueued on `stream` (a cudaStream_t; nullptr = the legacy default stream); device pointers.
  void all_reduce(void* buf, size_t count, NcclDtype dtype, NcclReduce op, void* stream);
  // recv holds size() * count elements: rank r's `count` elements at offset r * count.
  void all_gather(const void* send, void* recv, size_t count, NcclDtype dtype, void* stream);
  void broadcast(void* buf, size_t count, NcclDtype dtype, int root, void* stream);
  // Waits until everything enqueued on `stream` has finished (errors reported here).
  void synchronize(void* stream);

 private:
  void* comm_ = nullptr;  // ncclComm_t
  int rank_ = 0, size_ = 1, device_ = 0;
};

}  // namespace lminf
