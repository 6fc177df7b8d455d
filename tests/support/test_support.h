// Helpers shared by the test binaries: temporary folders, the shared fixtures, the lminf binary.
#pragma once

#include <ATen/ATen.h>

#include <filesystem>
#include <string>
#include <vector>

#include "framework/core/error.h"

namespace lminf::testing {

// A fresh empty folder under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// ../shared/fixtures/<name>, or an empty path when ../shared is absent (tests then GTEST_SKIP).
std::filesystem::path shared_fixture(const std::string& name);

// The built lminf executable and the source tree.
std::filesystem::path lminf_binary();
std::filesystem::path source_dir();

// Runs a shell command, returns its exit status; stdout+stderr captured into *output when given.
int run_command(const std::string& command, std::string* output = nullptr);

std::string read_text(const std::filesystem::path& p);

// The names in a folder, sorted.
std::vector<std::string> dir_entries(const std::filesystem::path& dir);

// The message of the lminf::Error that `f` throws ("" if it throws none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const lminf::Error& e) {
    return e.what();
  }
  return "";
}
void write_text(const std::filesystem::path& p, const std::string& text);

// max |a - b| / max(1, |a|) over the entries that are not NaN (padding of per-token outputs). float32
// tensor-parallel runs round their split reductions differently: each token's NLL within 5e-5
// (stories260k text: up to 1.2e-5), the mean NLL within 1e-5 relative (about 1e-7 in practice).
double padded_max_rel_diff(const at::Tensor& a, const at::Tensor& b);

}  // namespace lminf::testing
