// The process grid: world = tensor_parallel x data_parallel.
//
//   world rank = dp_rank * tensor_parallel + tp_rank
//
// A tensor-parallel group is tensor_parallel consecutive world ranks holding one replica of the
// model between them (mpirun packs consecutive ranks on one node, where TP traffic is heaviest); a
// data-parallel group is the ranks with the same tp_rank, one from each replica. With tp = 4, dp = 2:
//   TP groups {0,1,2,3} {4,5,6,7};  DP groups {0,4} {1,5} {2,6} {3,7}.
// Only world rank 0 writes outputs and prints progress.
#pragma once

#include <memory>

#include "parallel/communicator.h"

namespace lminf {

class ProcessGrid {
 public:
  // Collective over `world` (splits it twice). Throws when tensor_parallel x data_parallel differs
  // from world.size(). `world` must outlive the grid.
  ProcessGrid(Communicator& world, int tensor_parallel, int data_parallel);

  Communicator& world() { return world_; }
  Communicator& tp() { return *tp_; }  // this rank's tensor-parallel group (rank = tp_rank)
  Communicator& dp() { return *dp_; }  // this rank's data-parallel group (rank = dp_rank)

  int tp_size() const { return tp_size_; }
  int dp_size() const { return dp_size_; }
  int tp_rank() const { return world_.rank() % tp_size_; }
  int dp_rank() const { return world_.rank() / tp_size_; }
  bool writer() const { return world_.rank() == 0; }

 private:
  Communicator& world_;
  int tp_size_, dp_size_;
  std::unique_ptr<Communicator> tp_, dp_;
};

}  // namespace lminf
