// A communicator that carries CUDA tensors through host memory: each collective copies the tensor
// to the CPU, runs the inner (CPU) communicator's collective there and copies the result back.
// parallel.communicator: mpi on a GPU uses it, so several ranks can share one GPU (NCCL refuses two
// ranks on one device) and tensor parallelism can be exercised on a single GPU. CPU tensors pass
// straight through.
#pragma once

#include <memory>

#include "parallel/communicator.h"

namespace lminf {

class HostStagedCommunicator final : public Communicator {
 public:
  explicit HostStagedCommunicator(Communicator& inner) : inner_(&inner) {}
  explicit HostStagedCommunicator(std::unique_ptr<Communicator> owned) : owned_(std::move(owned)), inner_(owned_.get()) {}

  std::string name() const override { return inner_->name() + "+host"; }
  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  void all_reduce(at::Tensor& t, ReduceOp op = ReduceOp::kSum) override;
  at::Tensor all_gather(const at::Tensor& t, int64_t dim) override;
  void broadcast(at::Tensor& t, int root) override;
  void barrier() override { inner_->barrier(); }
  std::unique_ptr<Communicator> split(int color, int key) override;

 private:
  std::unique_ptr<Communicator> owned_;
  Communicator* inner_;
};

}  // namespace lminf
