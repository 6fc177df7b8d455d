// Output files that appear whole or not at all: write a temporary in the same folder, fsync it,
// rename it onto the final name (rename is atomic within one file system). A reader never sees a
// half-written results.json, and a killed run leaves no file that looks finished.
#pragma once

#include <filesystem>
#include <string>

namespace lminf {

// Writes `content` to `path` atomically through `path.tmp-<pid>`. On failure removes the
// temporary and throws lminf::Error naming the path and the OS error, e.g.
// "cannot write runs/x/results.json: Permission denied (check that runs/x exists and is writable)".
void write_file_atomic(const std::filesystem::path& path, const std::string& content);

// A temporary name for writers that must be handed a file name (HDF5):
//   AtomicPath out("runs/x/acts.h5");          // nothing is created yet
//   write_somehow(out.temp_path());            // runs/x/.acts.h5.tmp-<pid>
//   out.commit();                              // fsync, rename onto runs/x/acts.h5
// Destroyed without commit(), it removes the temporary (if any); the final path is not touched.
// The temporary name is unique per process and final path: two AtomicPath objects for the same
// final path in one process would share it.
class AtomicPath {
 public:
  explicit AtomicPath(std::filesystem::path final_path);
  ~AtomicPath();
  AtomicPath(AtomicPath&& other) noexcept;  // move-only: declaring the moves deletes the copies
  AtomicPath& operator=(AtomicPath&& other) noexcept;

  const std::filesystem::path& final_path() const { return final_path_; }
  const std::filesystem::path& temp_path() const { return temp_path_; }
  bool committed() const { return committed_; }

  // fsyncs the temporary, renames it onto final_path() and fsyncs the folder. Throws
  // lminf::Error (naming the final path and the OS error) if the temporary is missing or the
  // rename fails; the temporary is then still removed by the destructor.
  void commit();

 private:
  void discard() noexcept;

  std::filesystem::path final_path_;
  std::filesystem::path temp_path_;
  bool committed_ = false;
  bool active_ = false;  // false once committed or moved from
};

// Creates `dir` (and its parents) if needed and checks that a file can be created in it.
// Errors name the config key, e.g. "output.dir: cannot create folder runs/x: Not a directory
// (set output.dir to a writable folder)".
void ensure_writable_dir(const std::filesystem::path& dir, const std::string& key);

}  // namespace lminf
