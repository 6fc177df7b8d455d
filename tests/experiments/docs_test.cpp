// The docs stay true: every key `lminf keys` prints is documented in docs/yaml.md, and every
// attention variant and task appears there or in its own doc.
#include <gtest/gtest.h>

#include <sstream>

#include "attention/registry.h"
#include "experiments/task.h"
#include "support/test_support.h"

namespace lminf {
namespace {

TEST(Docs, EveryYamlKeyIsDocumented) {
  std::string keys;
  ASSERT_EQ(lminf::testing::run_command(lminf::testing::lminf_binary().string() + " keys", &keys), 0);
  const std::string doc = lminf::testing::read_text(lminf::testing::source_dir() / "docs" / "yaml.md");
  std::istringstream in(keys);
  std::string line;
  int checked = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string key;
    ls >> key;
    EXPECT_NE(doc.find("`" + key + "`"), std::string::npos) << "docs/yaml.md does not document `" << key << "`";
    ++checked;
  }
  EXPECT_GT(checked, 15);
}

TEST(Docs, EveryTaskHasASection) {
  const std::string doc = lminf::testing::read_text(lminf::testing::source_dir() / "docs" / "yaml.md");
  for (const auto& t : task_registry())
    EXPECT_NE(doc.find("task.type: " + t.name), std::string::npos) << "docs/yaml.md has no section for task " << t.name;
}

}  // namespace
}  // namespace lminf
