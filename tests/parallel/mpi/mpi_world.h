// The MPI test binary (run under mpirun; ctest label mpi): every rank runs every test in the same
// order, so tests may call collectives. A test must take the same branches on every rank (skip on
// all ranks or none); failures are printed by the rank that sees them, and mpirun's exit status is
// non-zero when any rank failed.
#pragma once

#include "parallel/communicator.h"

namespace lminf::testing {

// The world communicator of this job (all ranks), created by the test main after MPI_Init.
Communicator& mpi_world();

}  // namespace lminf::testing
