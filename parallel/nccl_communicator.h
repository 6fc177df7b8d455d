// A Communicator for CUDA tensors over NCCL (built only with a CUDA-enabled libtorch and NCCL:
// LMINF_WITH_NCCL). CUDA tensors go through NCCL on libtorch's current stream of their device; CPU
// tensors (results being merged, token counts) go through the bootstrap communicator, so one
// communicator serves a whole GPU run. MPI bootstraps it: rank 0 makes the NCCL unique id and the
// bootstrap communicator broadcasts it.
#pragma once

#include <memory>

#include "parallel/communicator.h"
#include "parallel/nccl_group.h"

namespace lminf {

class NcclCommunicator final : public Communicator {
 public:
  // Collective over `bootstrap` (an MPI communicator; it is duplicated, so it need not outlive this
  // one). This rank uses CUDA device `device`.
  NcclCommunicator(Communicator& bootstrap, int device);

  std::string name() const override { return "nccl"; }
  int rank() const override { return boot_->rank(); }
  int size() const override { return boot_->size(); }
  // bfloat16/float16 are reduced in float32, as on the MPI path (same numbers on CPU and GPU runs).
  void all_reduce(at::Tensor& t, ReduceOp op) override;
  at::Tensor all_gather(const at::Tensor& t, int64_t dim) override;
  void broadcast(at::Tensor& t, int root) override;
  void barrier() override;
  // Splits the bootstrap communicator and builds a new NCCL group over each part.
  std::unique_ptr<Communicator> split(int color, int key) override;

  int device() const { return group_->device(); }

 private:
  NcclCommunicator(std::unique_ptr<Communicator> boot, int device);
  std::unique_ptr<Communicator> boot_;
  std::unique_ptr<NcclGroup> group_;
};

}  // namespace lminf
