// The lminf command line (main.cpp only catches and reports).
#pragma once

#include <string>
#include <vector>

namespace lminf {

class MpiRuntime;

// Runs `lminf ARGS...`; returns the exit status. Throws lminf::Error for user errors. `mpi` is main's
// MPI runtime: `run` takes its world communicator (mpirun -np N; a world of 1 without mpirun).
int cli_main(const std::vector<std::string>& args, MpiRuntime& mpi);

std::string cli_usage();

}  // namespace lminf
