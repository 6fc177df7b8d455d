// The hostile-input samples of ../shared/reliability (one case per file, run by its repro.sh): each
// must end in a clean error from the `lminf` binary -- exit status 1 or 2, not a signal or a hang --
// whose message names the file at fault, with no ATen / HDF5 internals in it. Skips when
// ../shared/reliability is absent.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <set>

#include "support/test_support.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;

fs::path reliability_dir() { return fs::path(LMINF_SHARED_DIR) / "reliability"; }

// The file a case's message must name, from the name of its input (see repro.sh).
std::string file_named(const std::string& input) {
  if (input.find("-config-") != std::string::npos) return "config.json";
  if (input.find("-tokenizer-") != std::string::npos) return "tokenizer.json";
  if (input.find("-jsonl-") != std::string::npos) return "data.jsonl";
  if (input.find("-token_nll-") != std::string::npos) return "token_nll.h5";
  if (input.find("-yaml-") != std::string::npos) return "exp.yaml";
  return "";
}

TEST(ReliabilityCases, EveryCaseEndsInACleanErrorNamingTheFile) {
  const fs::path dir = reliability_dir();
  if (!fs::exists(dir / "repro.sh")) GTEST_SKIP() << dir << " is absent";
  std::set<std::string> inputs;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (std::regex_match(name, std::regex("c[0-9]+-.*")) && !file_named(name).empty()) inputs.insert(name);
  }
  ASSERT_FALSE(inputs.empty());
  for (const std::string& input : inputs) {
    const std::string id = input.substr(0, input.find('-'));
    std::string out;
    const int rc = testing::run_command("cd " + testing::source_dir().string() + " && LMINF=" +
                                            testing::lminf_binary().string() + " timeout 120 sh " +
                                            (dir / "repro.sh").string() + " " + id,
                                        &out);
    EXPECT_TRUE(rc == 1 || rc == 2) << id << ": exit status " << rc << "\n" << out;
    for (const char* internal : {"c10::", "torch", "Exception raised from", "HDF5-DIAG", "json.exception", "terminate"})
      EXPECT_EQ(out.find(internal), std::string::npos) << id << ": \"" << internal << "\" in\n" << out;
    const std::size_t error = out.find("error: ");
    ASSERT_NE(error, std::string::npos) << id << ":\n" << out;
    EXPECT_NE(out.find(file_named(input), error), std::string::npos) << id << ": the error names no " << file_named(input)
                                                                  << "\n" << out;
    std::smatch m;  // repro.sh builds each case in a fresh folder under /tmp and prints it
    if (std::regex_search(out, m, std::regex("case folder: (/tmp/lminf-case\\.[A-Za-z0-9]+)"))) fs::remove_all(m[1].str());
  }
}

}  // namespace
}  // namespace lminf
