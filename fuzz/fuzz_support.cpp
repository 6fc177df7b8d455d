#include "fuzz_support.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <system_error>
#include <typeinfo>

#include "framework/core/error.h"
#include "framework/core/logging.h"

namespace lminf::fuzz {
namespace fs = std::filesystem;

namespace {

struct Scratch {
  fs::path dir;
  Scratch() {
    // tmpfs when there is one: the targets write and map a file per input, and on a disk-backed
    // /tmp that costs most of each execution (8x fewer executions per second measured).
    std::error_code ec;
    const fs::path base = fs::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0
                              ? fs::path("/dev/shm") : fs::temp_directory_path();
    dir = base / ("lminf-fuzz-" + std::to_string(::getpid()));
    fs::create_directories(dir);
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

[[noreturn]] void finding(const char* kind, const char* what) {
  std::fprintf(stderr, "\n==lminf-fuzz== FINDING: %s: %s\n", kind, what);
  std::fflush(stderr);
  std::abort();
}

}  // namespace

const fs::path& scratch_dir() {
  static Scratch s;
  return s.dir;
}

fs::path write_scratch(const std::string& name, const std::string& bytes) {
  const fs::path p = scratch_dir() / name;
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) finding("harness", ("cannot write " + p.string()).c_str());
  return p;
}

std::vector<std::string> split_input(const uint8_t* data, size_t size, char sep, size_t max_parts) {
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < size; ++i) {
    const char c = static_cast<char>(data[i]);
    if (c == sep && parts.size() < max_parts) {
      parts.emplace_back();
    } else {
      parts.back() += c;
    }
  }
  return parts;
}

bool guarded(const std::function<void()>& step) {
  try {
    step();
    return true;
  } catch (const Error&) {
    return false;  // the expected answer to a bad input
  } catch (const InternalError& e) {
    finding("lminf::InternalError", e.what());
  } catch (const std::exception& e) {
    const std::string what = std::string(typeid(e).name()) + ": " + e.what();
    finding("an exception other than lminf::Error", what.c_str());
  } catch (...) {
    finding("a non-std exception", "(unknown type)");
  }
}

void quiet_logging() {
  static const bool once = [] {
    LogSettings s;
    s.level = LogLevel::kError;
    set_log_settings(s);
    return true;
  }();
  (void)once;
}

}  // namespace lminf::fuzz
