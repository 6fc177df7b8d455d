#include "parallel/host_staged_communicator.h"

namespace lminf {

// One rank: every collective is the identity, and nothing crosses to the host.

void HostStagedCommunicator::all_reduce(at::Tensor& t, ReduceOp op) {
  if (size() == 1 && !t.device().is_cpu()) return;
  if (t.device().is_cpu()) return inner_->all_reduce(t, op);
  at::Tensor host = t.to(at::kCPU).contiguous();
  inner_->all_reduce(host, op);
  t.copy_(host);
}

at::Tensor HostStagedCommunicator::all_gather(const at::Tensor& t, int64_t dim) {
  if (size() == 1 && !t.device().is_cpu()) return t;
  if (t.device().is_cpu()) return inner_->all_gather(t, dim);
  return inner_->all_gather(t.to(at::kCPU).contiguous(), dim).to(t.device());
}

void HostStagedCommunicator::broadcast(at::Tensor& t, int root) {
  if (size() == 1 && !t.device().is_cpu()) return;
  if (t.device().is_cpu()) return inner_->broadcast(t, root);
  at::Tensor host = t.to(at::kCPU).contiguous();
  inner_->broadcast(host, root);
  t.copy_(host);
}

std::unique_ptr<Communicator> HostStagedCommunicator::split(int color, int key) {
  return std::make_unique<HostStagedCommunicator>(inner_->split(color, key));
}

}  // namespace lminf
