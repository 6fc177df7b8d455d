#include "tests/parallel/mpi/mpi_experiment.h"

#include "experiments/run/run_experiment.h"
#include "tests/parallel/mpi/mpi_world.h"

namespace lminf::testing {

void run_on_rank0_alone(const std::filesystem::path& yaml) {
  Communicator& w = mpi_world();
  if (w.rank() == 0) {
    LocalCommunicator one;
    auto exp = load_experiment(yaml.string(), {}, 1);
    run_experiment(exp, one);
  }
  w.barrier();
}

void run_on_world(const std::filesystem::path& yaml, const std::vector<std::string>& overrides) {
  Communicator& w = mpi_world();
  auto exp = load_experiment(yaml.string(), overrides, w.size());
  run_experiment(exp, w);
}

}  // namespace lminf::testing
