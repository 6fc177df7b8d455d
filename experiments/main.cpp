// lminf: catches every error once, prints "[rank r] error: ..." and exits non-zero; under mpirun it
// then ends every rank (MPI_Abort), so an error on one rank never leaves the others in a collective.
// SIGINT / SIGTERM stop the run at its next unit of work ("[rank r] interrupted: ...", exit 128 + signal).
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "experiments/cli/cli.h"
#include "experiments/cli/uncaught.h"
#include "framework/core/error.h"
#include "framework/core/interrupt.h"
#include "framework/core/logging.h"
#include "parallel/mpi_communicator.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  lminf::MpiRuntime mpi;  // MPI_Init_thread on first use (lminf run), MPI_Finalize at exit
  lminf::install_interrupt_handlers();
  int code = 1;
  try {
    return lminf::cli_main(args, mpi);
  } catch (const lminf::Interrupted& e) {
    std::fprintf(stderr, "[rank %d] interrupted: %s\n", mpi.world_rank(), e.what());
    code = 128 + e.signal();
  } catch (...) {  // errors as they are; anything else as "internal error" with the command, no stack trace
    const lminf::UncaughtReport r = lminf::describe_uncaught(std::current_exception(), args);
    std::fprintf(stderr, "[rank %d] %s\n", mpi.world_rank(), r.message.c_str());
  }
  mpi.abort_job(code);  // returns when this is the only rank
  return code;
}
