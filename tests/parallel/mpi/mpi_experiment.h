// Experiments in the MPI test binary: the one-rank reference run and the same experiment over the
// world, which a test then compares (rank 0 reads both outputs).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace lminf::testing {

// Rank 0 runs the experiment file `yaml` alone (its own LocalCommunicator, world size 1: the
// reference of a parallel run) while the other ranks wait at a barrier.
void run_on_rank0_alone(const std::filesystem::path& yaml);

// Every rank runs `yaml` over mpi_world() with `overrides` (parallel.*, output.dir, ...).
void run_on_world(const std::filesystem::path& yaml, const std::vector<std::string>& overrides);

}  // namespace lminf::testing
