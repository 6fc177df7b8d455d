#include "parallel/process_grid.h"

#include "framework/core/error.h"

namespace lminf {

ProcessGrid::ProcessGrid(Communicator& world, int tensor_parallel, int data_parallel)
    : world_(world), tp_size_(tensor_parallel), dp_size_(data_parallel) {
  if (tensor_parallel < 1 || data_parallel < 1)
    fail("parallel: tensor_parallel (", tensor_parallel, ") and data_parallel (", data_parallel, ") must be >= 1");
  if (tensor_parallel * data_parallel != world.size())
    fail("parallel: tensor_parallel (", tensor_parallel, ") x data_parallel (", data_parallel,
         ") must equal the number of ranks (", world.size(), "; set mpirun -np accordingly)");
  const int r = world.rank();
  // Same color = same group; the key orders ranks inside it.
  tp_ = world.split(/*color=*/r / tensor_parallel, /*key=*/r % tensor_parallel);
  dp_ = world.split(/*color=*/r % tensor_parallel, /*key=*/r / tensor_parallel);
  if (tp_->size() != tensor_parallel || dp_->size() != data_parallel || tp_->rank() != tp_rank() ||
      dp_->rank() != dp_rank())
    fail("ProcessGrid: split gave groups of ", tp_->size(), " x ", dp_->size(), " (expected ", tensor_parallel, " x ",
         data_parallel, ")");
}

}  // namespace lminf
