#include "framework/io/atomic_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "framework/core/error.h"
#include "support/test_support.h"

namespace lminf {
namespace {
using lminf::testing::error_of;
namespace fs = std::filesystem;
using testing::read_text;
using testing::TempDir;
using testing::write_text;

TEST(WriteFileAtomic, WritesAndReplaces) {
  TempDir dir;
  fs::path p = dir / "results.json";
  write_file_atomic(p, "{\"a\": 1}\n");
  EXPECT_EQ(read_text(p), "{\"a\": 1}\n");
  std::string big(1 << 20, 'x');
  big[12345] = '\0';
  write_file_atomic(p, big);
  EXPECT_EQ(read_text(p), big);
  write_file_atomic(p, "");
  EXPECT_EQ(read_text(p), "");
  EXPECT_EQ(testing::dir_entries(dir.path()), std::vector<std::string>{"results.json"});
}

TEST(WriteFileAtomic, FailureNamesPathAndLeavesNoTemp) {
  TempDir dir;
  write_text(dir / "blocker", "a regular file");
  fs::path p = dir / "blocker" / "results.json";  // parent is a regular file: fails even as root
  std::string msg = error_of([&] { write_file_atomic(p, "x"); });
  EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("Not a directory"), std::string::npos) << msg;
  EXPECT_NE(msg.find("writable"), std::string::npos) << msg;
  EXPECT_EQ(testing::dir_entries(dir.path()), std::vector<std::string>{"blocker"});
}

TEST(WriteFileAtomic, FailedRenameRemovesTemp) {
  TempDir dir;
  fs::create_directory(dir / "out");
  write_text(dir / "out" / "keep", "k");  // a non-empty folder cannot be replaced by a file
  std::string msg = error_of([&] { write_file_atomic(dir / "out", "x"); });
  EXPECT_NE(msg.find((dir / "out").string()), std::string::npos) << msg;
  EXPECT_EQ(testing::dir_entries(dir.path()), std::vector<std::string>{"out"});
  EXPECT_EQ(read_text(dir / "out" / "keep"), "k");
}

TEST(AtomicPath, UncommittedLeavesNothing) {
  TempDir dir;
  fs::path final_path = dir / "acts.h5";
  {
    AtomicPath out(final_path);
    EXPECT_EQ(out.final_path(), final_path);
    EXPECT_EQ(out.temp_path().parent_path(), dir.path());
    EXPECT_EQ(out.temp_path().filename().string(), ".acts.h5.tmp-" + std::to_string(::getpid()));
    write_text(out.temp_path(), "partial");
  }
  EXPECT_TRUE(testing::dir_entries(dir.path()).empty());
}

TEST(AtomicPath, UncommittedKeepsAnOldFinalFile) {
  TempDir dir;
  write_text(dir / "acts.h5", "old");
  {
    AtomicPath out(dir / "acts.h5");
    write_text(out.temp_path(), "new, unfinished");
  }
  EXPECT_EQ(testing::dir_entries(dir.path()), std::vector<std::string>{"acts.h5"});
  EXPECT_EQ(read_text(dir / "acts.h5"), "old");
}

TEST(AtomicPath, CommitRenamesOntoFinal) {
  TempDir dir;
  write_text(dir / "acts.h5", "old");
  AtomicPath out(dir / "acts.h5");
  write_text(out.temp_path(), "new");
  out.commit();
  EXPECT_TRUE(out.committed());
  EXPECT_EQ(read_text(dir / "acts.h5"), "new");
  EXPECT_EQ(testing::dir_entries(dir.path()), std::vector<std::string>{"acts.h5"});
  EXPECT_NE(error_of([&] { out.commit(); }), "");  // once only
}

TEST(AtomicPath, MoveTransfersOwnership) {
  TempDir dir;
  AtomicPath a(dir / "x.bin");
  write_text(a.temp_path(), "data");
  AtomicPath b(std::move(a));
  {
    AtomicPath dropped(std::move(b));
    b = std::move(dropped);
  }  // moved back and forth: temp kept
  ASSERT_TRUE(fs::exists(b.temp_path()));
  b.commit();
  EXPECT_EQ(read_text(dir / "x.bin"), "data");
  EXPECT_EQ(testing::dir_entries(dir.path()), std::vector<std::string>{"x.bin"});
}

TEST(AtomicPath, CommitWithoutTempNamesThePath) {
  TempDir dir;
  AtomicPath out(dir / "never_written.h5");
  std::string msg = error_of([&] { out.commit(); });
  EXPECT_NE(msg.find((dir / "never_written.h5").string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("No such file"), std::string::npos) << msg;
}

TEST(AtomicEnsureWritableDir, CreatesNestedFoldersAndLeavesNoProbe) {
  TempDir dir;
  fs::path out = dir / "runs" / "a" / "b";
  ensure_writable_dir(out, "output.dir");
  EXPECT_TRUE(fs::is_directory(out));
  EXPECT_TRUE(testing::dir_entries(out).empty());
  ensure_writable_dir(out, "output.dir");  // existing folder: fine
}

TEST(AtomicEnsureWritableDir, ErrorNamesKeyAndPath) {
  TempDir dir;
  write_text(dir / "file", "x");
  fs::path out = dir / "file" / "sub";
  std::string msg = error_of([&] { ensure_writable_dir(out, "output.dir"); });
  EXPECT_EQ(msg.rfind("output.dir: ", 0), 0u) << msg;
  EXPECT_NE(msg.find(out.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("set output.dir"), std::string::npos) << msg;

  msg = error_of([&] { ensure_writable_dir(dir / "file", "analysis.out"); });  // a file, not a folder
  EXPECT_EQ(msg.rfind("analysis.out: ", 0), 0u) << msg;
  EXPECT_NE(msg.find((dir / "file").string() + " exists and is not a folder"), std::string::npos) << msg;
}

}  // namespace
}  // namespace lminf
