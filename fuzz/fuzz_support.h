// What every fuzz target shares (docs/fuzzing.md): a scratch folder per process, writing the input
// to a file there, splitting an input into parts, and the verdict on what an entry point threw.
// An lminf::Error is the expected answer to a bad input; anything else -- InternalError (a broken
// invariant), another exception type, a crash or a sanitizer report -- is a finding, and guarded()
// aborts on it so libFuzzer saves the input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace lminf::fuzz {

// A folder of this process's own under /dev/shm (else the temporary directory), removed at exit.
const std::filesystem::path& scratch_dir();

// Writes `bytes` to scratch_dir()/name (replacing it) and returns the path.
std::filesystem::path write_scratch(const std::string& name, const std::string& bytes);

// The input cut at each separator byte `sep` (at most max_parts parts; the last keeps the rest).
std::vector<std::string> split_input(const uint8_t* data, size_t size, char sep, size_t max_parts);

// Runs `step`; returns true when it returned, false when it threw lminf::Error; aborts (a finding)
// on any other exception, naming its type and message.
bool guarded(const std::function<void()>& step);

// Once per process: lminf's log output off (warnings about bad records would flood the run).
void quiet_logging();

}  // namespace lminf::fuzz
