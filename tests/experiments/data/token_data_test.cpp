#include <gtest/gtest.h>

#include "framework/core/error.h"
#include "experiments/data/token_data.h"
#include "support/test_support.h"

namespace lminf {
namespace {
using lminf::testing::TempDir;
using lminf::testing::write_text;

std::string error_of(const std::filesystem::path& p, const IdFileOptions& o) {
  try {
    read_id_file(p, o);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TokenData, ReadsLinesSkipsBlanksPrependsBos) {
  TempDir d;
  write_text(d / "a.ids", "3 4 5\n\n  6\t7 \r\n8\n");
  IdFileOptions o;
  o.prepend_bos = true;
  o.bos_id = 1;
  auto s = read_id_file(d / "a.ids", o);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0], (std::vector<int64_t>{1, 3, 4, 5}));
  EXPECT_EQ(s[1], (std::vector<int64_t>{1, 6, 7}));
  o.max_sequences = 2;
  EXPECT_EQ(read_id_file(d / "a.ids", o).size(), 2u);
}

TEST(TokenData, ErrorsNameFileLineColumn) {
  TempDir d;
  write_text(d / "b.ids", "3 4\n5 x7 6\n");
  EXPECT_NE(error_of(d / "b.ids", {}).find("b.ids:2:3: \"x7\" is not a token id"), std::string::npos)
      << error_of(d / "b.ids", {});
  write_text(d / "c.ids", "3 4\n5 600\n");
  IdFileOptions o;
  o.vocab_size = 512;
  EXPECT_NE(error_of(d / "c.ids", o).find("c.ids:2:3: token id 600 is outside"), std::string::npos);
  write_text(d / "e.ids", "");
  EXPECT_NE(error_of(d / "e.ids", {}).find("holds no sequences"), std::string::npos);
  EXPECT_NE(error_of(d / "missing.ids", {}).find("does not exist"), std::string::npos);
  write_text(d / "n.ids", "3 -4\n");
  EXPECT_NE(error_of(d / "n.ids", {}).find("\"-4\""), std::string::npos);
}

}  // namespace
}  // namespace lminf
