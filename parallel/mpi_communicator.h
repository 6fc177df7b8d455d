// MPI: the runtime that owns MPI's lifetime in this process, and a Communicator over an MPI
// communicator for CPU tensors. MPI bootstraps everything (ranks, world size, the NCCL unique id);
// <mpi.h> stays inside mpi_communicator.cpp.
//
//   mpirun -np 4 lminf run x.yaml     -> MpiRuntime in main, world() over the 4 ranks
//   lminf run x.yaml                  -> a world of 1 without MPI (no singleton start-up)
#pragma once

#include <memory>

#include "parallel/communicator.h"

namespace lminf {

// Created once, in main, before any work; destroyed at exit (MPI_Finalize). MPI is initialised on
// the first call of world(), so commands that need no communicator never touch MPI.
// Whether this process was started by an MPI launcher (mpirun / mpiexec of Open MPI, MPICH, Hydra,
// PMIx): the launchers' environment variables.
bool launched_by_mpirun();

class MpiRuntime {
 public:
  MpiRuntime() = default;
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  // Under mpirun (launched_by_mpirun): initialises MPI (MPI_THREAD_FUNNELED: only the main thread
  // calls MPI) when needed and returns a new communicator over every rank of the job (a duplicate
  // of MPI_COMM_WORLD, errors returned as lminf::Error). Otherwise a LocalCommunicator: a world of
  // one rank, and MPI is never initialised (start-up stays fast). Destroy the communicators before
  // the runtime.
  std::unique_ptr<Communicator> world();

  bool initialized() const { return initialized_; }
  // Rank and size in MPI_COMM_WORLD (0 and 1 before initialisation).
  int world_rank() const;
  int world_size() const;

  // Ends every rank of the job now (MPI_Abort(MPI_COMM_WORLD, code)) when MPI runs with more than one
  // rank; returns otherwise. main calls it after printing "[rank r] message", so an error on one rank
  // never leaves the others waiting in a collective.
  void abort_job(int code) const;

 private:
  bool initialized_ = false;  // by this object (MPI_Init_thread called here)
};

}  // namespace lminf
