// Numbers given to the `lminf` commands on the command line are bounded before any work starts:
// junk values end in an error naming the option and the allowed range, never in a run that does not
// end or an allocation that cannot succeed (experiments/cli/cli.cpp, Args::get_int / get_double).
#include <gtest/gtest.h>

#include "support/test_support.h"

namespace lminf {
namespace {

std::string run_lminf(const std::string& args, int& rc) {
  std::string out;
  rc = testing::run_command("timeout 60 " + testing::lminf_binary().string() + " " + args, &out);
  return out;
}

TEST(CliBounds, JunkNumbersNamedWithTheirRange) {
  testing::TempDir d;
  const std::string model = (testing::source_dir() / "embedded" / "lminf-info-1m").string();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"generate " + model + " --max-new-tokens 99999999999", "--max-new-tokens must be in [0, "},
      {"generate " + model + " --sample --temperature nan", "--temperature must be a finite number in ["},
      {"generate " + model + " --top-p 2", "--top-p must be a finite number in ["},
      {"random-ids " + (d / "r.ids").string() + " --vocab 10 --sequences 1000000000000 --length 5", "--sequences must be in [0, "},
      {"random-ids " + (d / "r.ids").string() + " --vocab 10 --sequences 100000 --length 100000", "lminf random-ids: --sequences x --length (100000 x 100000) must be at most"},
      {"random-model tiny " + (d / "m").string() + " --shards 0", "--shards must be in [1, "},
      {"analyze x.h5 --out " + (d / "a").string() + " --ema 2", "--ema must be a finite number in [0, 1]"},
  };
  for (const auto& [args, expected] : cases) {
    int rc = 0;
    const std::string out = run_lminf(args, rc);
    EXPECT_EQ(rc, 1) << args << "\n" << out;
    EXPECT_NE(out.find("error: " + expected), std::string::npos) << args << "\n" << out;
  }
}

}  // namespace
}  // namespace lminf
