#include "framework/io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

#include "framework/core/error.h"

namespace lminf {
namespace fs = std::filesystem;

namespace {

std::string os_error(int err) { return std::strerror(err); }

// The fix a failed write suggests, for messages: "(free space in runs/x ...)".
std::string write_fix(int err, const fs::path& dir) {
  if (err == ENOSPC || err == EDQUOT)
    return "free space on the file system of " + dir.string() + " (earlier files are kept) and run it again";
  if (err == EROFS) return dir.string() + " is on a read-only file system: choose a writable folder";
  return "check that " + dir.string() + " exists and is writable";
}

// The folder a relative or absolute path lives in, for messages and the directory fsync.
fs::path parent_of(const fs::path& path) {
  fs::path parent = path.parent_path();
  return parent.empty() ? fs::path(".") : parent;
}

// Makes a completed rename durable. Best effort: some file systems refuse fsync on folders.
void fsync_dir(const fs::path& dir) noexcept {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// Returns 0 or the errno of the first failing step.
int write_all_and_sync(const fs::path& path, const std::string& content) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  const char* p = content.data();
  size_t left = content.size();
  int err = 0;
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  return err;
}

int fsync_file(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = ::fsync(fd) == 0 ? 0 : errno;
  ::close(fd);
  return err;
}

}  // namespace

void write_file_atomic(const fs::path& path, const std::string& content) {
  fs::path temp = path;
  temp += ".tmp-" + std::to_string(::getpid());
  int err = write_all_and_sync(temp, content);
  if (err == 0 && ::rename(temp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    ::unlink(temp.c_str());
    fail("cannot write ", path.string(), ": ", os_error(err), " (", write_fix(err, parent_of(path)), ")");
  }
  fsync_dir(parent_of(path));
}

AtomicPath::AtomicPath(fs::path final_path) : final_path_(std::move(final_path)), active_(true) {
  if (final_path_.filename().empty()) {
    fail("cannot write '", final_path_.string(), "': it names a folder, not a file (give a file name)");
  }
  temp_path_ =
      parent_of(final_path_) / ("." + final_path_.filename().string() + ".tmp-" + std::to_string(::getpid()));
}

AtomicPath::~AtomicPath() { discard(); }

AtomicPath::AtomicPath(AtomicPath&& other) noexcept
    : final_path_(std::move(other.final_path_)),
      temp_path_(std::move(other.temp_path_)),
      committed_(other.committed_),
      active_(std::exchange(other.active_, false)) {}

AtomicPath& AtomicPath::operator=(AtomicPath&& other) noexcept {
  if (this != &other) {
    discard();
    final_path_ = std::move(other.final_path_);
    temp_path_ = std::move(other.temp_path_);
    committed_ = other.committed_;
    active_ = std::exchange(other.active_, false);
  }
  return *this;
}

void AtomicPath::discard() noexcept {
  if (active_ && !committed_) ::unlink(temp_path_.c_str());
  active_ = false;
}

void AtomicPath::commit() {
  if (!active_ || committed_) {
    fail("cannot commit ", final_path_.string(), ": already committed or moved from (commit once)");
  }
  int err = fsync_file(temp_path_);
  if (err == 0 && ::rename(temp_path_.c_str(), final_path_.c_str()) != 0) err = errno;
  if (err != 0) {
    fail("cannot write ", final_path_.string(), ": ", os_error(err), " (", write_fix(err, parent_of(final_path_)), ")");
  }
  committed_ = true;
  active_ = false;
  fsync_dir(parent_of(final_path_));
}

void ensure_writable_dir(const fs::path& dir, const std::string& key) {
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
    fail(key, ": ", dir.string(), " exists and is not a folder (set ", key, " to a writable folder)");
  }
  fs::create_directories(dir, ec);
  if (ec) {
    fail(key, ": cannot create folder ", dir.string(), ": ", ec.message(), " (set ", key,
         " to a writable folder)");
  }
  fs::path probe = dir / (".lminf-write-probe-" + std::to_string(::getpid()));
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    int err = errno;
    fail(key, ": cannot create files in ", dir.string(), ": ", os_error(err), " (set ", key,
         " to a writable folder)");
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

}  // namespace lminf
