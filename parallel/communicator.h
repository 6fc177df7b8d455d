// The Communicator seam: collectives passed explicitly (no global process group). The local
// communicator makes every collective a no-op, so one code path serves 1 and N ranks.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>

namespace lminf {

enum class ReduceOp { kSum, kMax };

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual std::string name() const = 0;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // In place; every rank ends with the reduction of all ranks' tensors.
  virtual void all_reduce(at::Tensor& t, ReduceOp op = ReduceOp::kSum) = 0;
  // Concatenation of every rank's tensor along `dim` (equal shapes on all ranks).
  virtual at::Tensor all_gather(const at::Tensor& t, int64_t dim) = 0;
  // In place; every rank ends with root's tensor.
  virtual void broadcast(at::Tensor& t, int root) = 0;
  virtual void barrier() = 0;
  // A sub-communicator of the ranks with the same color, ordered by key (collective call).
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;
};

class LocalCommunicator final : public Communicator {
 public:
  std::string name() const override { return "local"; }
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void all_reduce(at::Tensor&, ReduceOp) override {}
  at::Tensor all_gather(const at::Tensor& t, int64_t) override { return t; }
  void broadcast(at::Tensor&, int) override {}
  void barrier() override {}
  std::unique_ptr<Communicator> split(int, int) override { return std::make_unique<LocalCommunicator>(); }
};

}  // namespace lminf
