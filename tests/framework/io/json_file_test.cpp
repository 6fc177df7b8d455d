// Depth-bounded JSON reading (framework/io/json_file.h): hostile nesting is refused naming the file,
// never reaching the recursive code (dump, copies) that would overflow the stack; every user-facing
// reader of JSON goes through it (config.json, tokenizer.json, safetensors headers).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "framework/io/json_file.h"
#include "framework/io/safetensors.h"
#include "support/test_support.h"

namespace lminf {
namespace {
using testing::TempDir;
using testing::error_of;

std::string nested(int depth, const std::string& leaf = "1") {
  return std::string(static_cast<size_t>(depth), '[') + leaf + std::string(static_cast<size_t>(depth), ']');
}

TEST(JsonFile, DepthLimitIsExact) {
  std::string error;
  EXPECT_TRUE(try_parse_json(nested(kMaxJsonDepth), error)) << error;
  EXPECT_FALSE(try_parse_json(nested(kMaxJsonDepth + 1), error));
  EXPECT_NE(error.find("nested deeper than " + std::to_string(kMaxJsonDepth)), std::string::npos) << error;
  // Objects count as arrays do.
  std::string obj;
  for (int i = 0; i <= kMaxJsonDepth; ++i) obj += "{\"a\":";
  obj += "1" + std::string(kMaxJsonDepth + 1, '}');
  EXPECT_FALSE(try_parse_json(obj, error));
}

TEST(JsonFile, HostileFileNamedWithoutLibraryPrefix) {
  TempDir d;
  const auto p = d / "config.json";
  testing::write_text(p, "{\"torch_dtype\": " + nested(100000, "\"x\"") + "}");
  const std::string e = error_of([&] { read_json_file(p); });
  EXPECT_NE(e.find(p.string() + ": not valid JSON (objects and arrays nested deeper"), std::string::npos) << e;
  testing::write_text(p, "{\"a\": ");
  const std::string m = error_of([&] { read_json_file(p, " (download it again)"); });
  EXPECT_NE(m.find(p.string() + ": not valid JSON ("), std::string::npos) << m;
  EXPECT_NE(m.find("(download it again)"), std::string::npos) << m;
  EXPECT_EQ(m.find("json.exception"), std::string::npos) << m;
}

TEST(JsonFile, SafetensorsHeaderNestedTooDeep) {
  TempDir d;
  const auto p = d / "model.safetensors";
  const std::string header = "{\"__metadata__\": " + nested(5000) + "}";
  std::ofstream out(p, std::ios::binary);
  const uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header;
  out.close();
  const std::string e = error_of([&] { SafetensorsFile f(p); });
  EXPECT_NE(e.find(p.string() + ": header is not valid JSON (objects and arrays nested deeper"), std::string::npos) << e;
}

}  // namespace
}  // namespace lminf
