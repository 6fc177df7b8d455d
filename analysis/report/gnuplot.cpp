#include "analysis/report/gnuplot.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

#include "framework/io/atomic_file.h"
#include "framework/core/error.h"

namespace lminf {
namespace fs = std::filesystem;

std::string find_gnuplot() {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    const fs::path p = fs::path(dir) / "gnuplot";
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "";
}

namespace {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

void run_gnuplot(const std::string& gnuplot, const fs::path& script_path, const std::string& script) {
  write_file_atomic(script_path, script);
  const fs::path log = fs::path(script_path).concat(".log");
  const std::string cmd = "cd " + shell_quote(fs::absolute(script_path).parent_path().string()) + " && " +
                          shell_quote(gnuplot) + " " + shell_quote(script_path.filename().string()) + " > " +
                          shell_quote(log.filename().string()) + " 2>&1";
  const int rc = std::system(cmd.c_str());
  const std::string messages = read_all(log);
  if (rc != 0) {
    fail("gnuplot failed on ", script_path.string(), " (exit ", WIFEXITED(rc) ? WEXITSTATUS(rc) : rc, "): ",
         messages.substr(0, 2000));
  }
  std::error_code ec;
  if (messages.empty()) fs::remove(log, ec);
}

std::string gnuplot_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace lminf
