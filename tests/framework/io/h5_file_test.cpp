#include "framework/io/h5_file.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "framework/core/error.h"
#include "support/test_support.h"

namespace lminf {
namespace {
using lminf::testing::error_of;
namespace fs = std::filesystem;
using testing::TempDir;
using testing::write_text;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Random values covering the dtype's range.
at::Tensor random_tensor(at::ScalarType dtype, at::IntArrayRef shape) {
  auto opts = at::TensorOptions().dtype(dtype);
  switch (dtype) {
    case at::kLong:
      return at::randint(-(int64_t{1} << 62), int64_t{1} << 62, shape, opts);
    case at::kInt:
      return at::randint(std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max(), shape,
                         opts);
    case at::kByte:
      return at::randint(0, 256, shape, opts);
    case at::kBool:
      return at::randint(0, 2, shape, at::TensorOptions().dtype(at::kLong)).to(at::kBool);
    case at::kDouble:
      return at::randn(shape, opts) * 1e10;
    default:
      return at::randn(shape, at::TensorOptions().dtype(at::kFloat)).to(dtype);
  }
}

// Same dtype, shape and bits (so NaN == NaN and -0.0 != 0.0).
void expect_identical(const at::Tensor& got, const at::Tensor& want, const std::string& what) {
  ASSERT_EQ(got.scalar_type(), want.scalar_type()) << what;
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  at::Tensor a = got.contiguous(), b = want.contiguous();
  if (a.scalar_type() == at::kFloat) {
    a = a.view(at::kInt);
    b = b.view(at::kInt);
  } else if (a.scalar_type() == at::kDouble) {
    a = a.view(at::kLong);
    b = b.view(at::kLong);
  }
  EXPECT_TRUE(at::equal(a, b)) << what;
}

at::ScalarType stored_as(at::ScalarType s) {
  if (s == at::kBool) return at::kByte;
  if (s == at::kHalf || s == at::kBFloat16) return at::kFloat;
  return s;
}

TEST(H5Writer, RoundTripsEveryDtypeAndRank) {
  at::manual_seed(1);
  TempDir dir;
  const std::vector<at::ScalarType> dtypes{at::kFloat, at::kDouble, at::kLong,     at::kInt,
                                           at::kByte,  at::kBool,   at::kBFloat16, at::kHalf};
  const std::vector<std::vector<int64_t>> shapes{
      {}, {1}, {0}, {0, 5}, {1025}, {3, 1037}, {2, 3, 173}, {2, 0, 3}, {2, 3, 4, 5}, {3, 2, 17, 31}};
  std::vector<at::Tensor> written;
  {
    H5Writer w(dir / "t.h5");
    for (size_t d = 0; d < dtypes.size(); ++d) {
      for (size_t s = 0; s < shapes.size(); ++s) {
        at::Tensor t = random_tensor(dtypes[d], shapes[s]);
        w.write("d" + std::to_string(d) + "/s" + std::to_string(s), t);
        written.push_back(t);
      }
    }
    w.commit();
  }
  H5Reader r(dir / "t.h5");
  size_t i = 0;
  for (size_t d = 0; d < dtypes.size(); ++d) {
    for (size_t s = 0; s < shapes.size(); ++s, ++i) {
      std::string name = "d" + std::to_string(d) + "/s" + std::to_string(s);
      EXPECT_EQ(r.shape(name), shapes[s]) << name;
      expect_identical(r.read(name), written[i].to(stored_as(dtypes[d])),
                       name + " " + at::toString(dtypes[d]));
    }
  }
}

TEST(H5Writer, KeepsNanInfAndSignedZeroAndHandlesStrides) {
  TempDir dir;
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  at::Tensor special = at::tensor({nan, inf, -inf, -0.0f, 0.0f, 1e-45f, 3.4e38f});
  at::Tensor big = at::randn({40, 70});
  big.index_put_({5, 7}, nan);
  at::Tensor strided = big.t().slice(0, 1, 70, 3);  // non-contiguous view [23, 40]
  at::Tensor dnan = at::full({2, 2}, std::numeric_limits<double>::quiet_NaN(), at::kDouble);
  {
    H5Writer w(dir / "t.h5");
    w.write("special", special);
    w.write("strided", strided);
    w.write("dnan", dnan);
    w.write("scalar_nan", at::scalar_tensor(nan));
    w.commit();
  }
  H5Reader r(dir / "t.h5");
  expect_identical(r.read("special"), special, "special");
  expect_identical(r.read("strided"), strided.contiguous(), "strided");
  expect_identical(r.read("dnan"), dnan, "dnan");
  EXPECT_TRUE(std::isnan(r.read("scalar_nan").item<float>()));
  EXPECT_EQ(r.read("scalar_nan").dim(), 0);
}

TEST(H5Writer, CreatesGroupsAndListsSorted) {
  TempDir dir;
  {
    H5Writer w(dir / "t.h5");
    w.write("factor1/layer_03/logits", at::zeros({2, 3}));
    w.write("/factor1/layer_01/logits", at::zeros({2}));
    w.write("b", at::zeros({1}));
    w.write("a", at::zeros({1}));
    w.create_group("empty/inner");
    w.create_group("empty/inner");  // exists: no-op
    w.commit();
  }
  H5Reader r(dir / "t.h5");
  EXPECT_EQ(r.list("/"), (std::vector<std::string>{"a", "b", "empty", "factor1"}));
  EXPECT_EQ(r.list("factor1"), (std::vector<std::string>{"layer_01", "layer_03"}));
  EXPECT_EQ(r.list("/factor1/layer_03"), std::vector<std::string>{"logits"});
  EXPECT_TRUE(r.list("empty/inner").empty());
  EXPECT_TRUE(r.exists("/"));
  EXPECT_TRUE(r.exists("factor1/layer_03/logits"));
  EXPECT_TRUE(r.exists("/factor1/layer_03"));
  EXPECT_FALSE(r.exists("factor1/layer_02/logits"));
  EXPECT_FALSE(r.exists("a/below_a_dataset"));
  EXPECT_EQ(r.shape("factor1/layer_03/logits"), (std::vector<int64_t>{2, 3}));
}

TEST(H5Writer, AttributesOfEveryTypeRoundTrip) {
  TempDir dir;
  const std::string config = "attention:\n  variant: local\nnote: h\xC3\xA9llo \xE2\x9C\x93\n";
  std::vector<double> many(20000);
  for (size_t i = 0; i < many.size(); ++i) many[i] = 0.5 * static_cast<double>(i) - 7.25;
  {
    H5Writer w(dir / "t.h5");
    w.write("acts/layer_00", at::zeros({4, 4}));
    w.create_group("meta");
    w.set_attr("/", "config", config);
    w.set_attr("/", "empty", "");
    w.set_attr("/", "schema_version", 3);  // int -> int64
    w.set_attr("/", "n_tokens", size_t{123456789});
    w.set_attr("/", "flag", true);
    w.set_attr("/", "min", std::numeric_limits<int64_t>::min());
    w.set_attr("/", "max", std::numeric_limits<int64_t>::max());
    w.set_attr("/", "lr", 0.1);
    w.set_attr("/", "neg_zero", -0.0);
    w.set_attr("/", "nan", std::numeric_limits<double>::quiet_NaN());
    w.set_attr("/", "as_float", 2.5f);
    w.set_attr("acts/layer_00", "shape", std::vector<int64_t>{4, 4});
    w.set_attr("acts/layer_00", "extremes",
               std::vector<int64_t>{std::numeric_limits<int64_t>::min(), -1, 0,
                                    std::numeric_limits<int64_t>::max()});
    w.set_attr("acts/layer_00", "no_ints", std::vector<int64_t>{});
    w.set_attr("meta", "scales", std::vector<double>{0.5, 1e300, -1e-300});
    w.set_attr("meta", "no_doubles", std::vector<double>{});
    w.set_attr("meta", "many", many);  // 160 KB: over the 64 KB compact attribute limit
    w.set_attr("meta", "replaced", int64_t{1});
    w.set_attr("meta", "replaced", std::string("now a string"));
    w.commit();
  }
  H5Reader r(dir / "t.h5");
  EXPECT_EQ(r.attr_string("/", "config"), config);
  EXPECT_EQ(r.attr_string("", "empty"), "");
  EXPECT_EQ(r.attr_int("/", "schema_version"), 3);
  EXPECT_EQ(r.attr_int("/", "n_tokens"), 123456789);
  EXPECT_EQ(r.attr_int("/", "flag"), 1);
  EXPECT_EQ(r.attr_int("/", "min"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(r.attr_int("/", "max"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(r.attr_double("/", "lr"), 0.1);
  EXPECT_TRUE(std::signbit(r.attr_double("/", "neg_zero")));
  EXPECT_TRUE(std::isnan(r.attr_double("/", "nan")));
  EXPECT_EQ(r.attr_double("/", "as_float"), 2.5);
  EXPECT_EQ(r.attr_double("/", "schema_version"), 3.0);  // integers read as doubles too
  EXPECT_EQ(r.attr_ints("acts/layer_00", "shape"), (std::vector<int64_t>{4, 4}));
  EXPECT_EQ(r.attr_ints("acts/layer_00", "extremes"),
            (std::vector<int64_t>{std::numeric_limits<int64_t>::min(), -1, 0,
                                  std::numeric_limits<int64_t>::max()}));
  EXPECT_TRUE(r.attr_ints("acts/layer_00", "no_ints").empty());
  EXPECT_EQ(r.attr_doubles("meta", "scales"), (std::vector<double>{0.5, 1e300, -1e-300}));
  EXPECT_TRUE(r.attr_doubles("meta", "no_doubles").empty());
  EXPECT_EQ(r.attr_doubles("meta", "many"), many);
  EXPECT_EQ(r.attr_string("meta", "replaced"), "now a string");
  EXPECT_TRUE(r.has_attr("/", "config"));
  EXPECT_FALSE(r.has_attr("/", "missing"));
  EXPECT_FALSE(r.has_attr("acts/layer_00", "config"));

  std::string msg = error_of([&] { r.attr_int("/", "config"); });
  EXPECT_TRUE(contains(msg, "config") && contains(msg, "not an integer")) << msg;
  msg = error_of([&] { r.attr_string("/", "missing"); });
  EXPECT_TRUE(contains(msg, "missing") && contains(msg, (dir / "t.h5").string())) << msg;
  msg = error_of([&] { r.attr_int("acts/layer_00", "shape"); });
  EXPECT_TRUE(contains(msg, "attr_ints")) << msg;
  msg = error_of([&] { r.has_attr("nope", "x"); });
  EXPECT_TRUE(contains(msg, "/nope")) << msg;
}

TEST(H5Writer, MisuseErrorsNameFileAndDataset) {
  TempDir dir;
  const std::string file = (dir / "t.h5").string();
  H5Writer w(dir / "t.h5");
  w.write("x/y", at::zeros({2}));
  std::string msg = error_of([&] { w.write("x/y", at::zeros({2})); });
  EXPECT_TRUE(contains(msg, file) && contains(msg, "/x/y") && contains(msg, "already exists")) << msg;
  msg = error_of([&] { w.write("x/y/z", at::zeros({2})); });  // parent is a dataset
  EXPECT_TRUE(contains(msg, file) && contains(msg, "/x/y/z") && contains(msg, "'/x/y' is a dataset")) << msg;
  msg = error_of([&] { w.create_extendible("x/y/e", at::kFloat, {2}, 4); });
  EXPECT_TRUE(contains(msg, "'/x/y' is a dataset")) << msg;
  msg = error_of([&] { w.write("c", at::zeros({2}, at::kComplexFloat)); });
  EXPECT_TRUE(contains(msg, file) && contains(msg, "'/c'") && contains(msg, "cannot be stored")) << msg;
  msg = error_of([&] { w.write("a//b", at::zeros({2})); });
  EXPECT_TRUE(contains(msg, "a//b")) << msg;
  msg = error_of([&] { w.set_attr("x/missing", "k", 1); });
  EXPECT_TRUE(contains(msg, file) && contains(msg, "/x/missing") && contains(msg, "holds: y")) << msg;
  msg = error_of([&] { w.set_attr("/", "big", uint64_t{1} << 63); });
  EXPECT_TRUE(contains(msg, "big") && contains(msg, "int64")) << msg;
  msg = error_of([&] { w.create_group("x/y"); });
  EXPECT_TRUE(contains(msg, "dataset")) << msg;
  w.commit();
  msg = error_of([&] { w.write("late", at::zeros({2})); });
  EXPECT_TRUE(contains(msg, file) && contains(msg, "committed")) << msg;
  EXPECT_NE(error_of([&] { w.commit(); }), "");
}

TEST(H5Writer, UncommittedLeavesNoFileAndNoTemp) {
  TempDir dir;
  {
    H5Writer w(dir / "t.h5");
    w.write("a", at::randn({100, 100}));
    auto ext = w.create_extendible("e", at::kFloat, {3}, 8);
    ext.append(at::randn({5, 3}));
    w.flush();
    EXPECT_EQ(testing::dir_entries(dir.path()).size(), 1u);  // the temporary
    EXPECT_FALSE(fs::exists(dir / "t.h5"));
  }
  EXPECT_TRUE(testing::dir_entries(dir.path()).empty());

  write_text(dir / "t.h5", "an old result");  // an old file survives an abandoned writer
  {
    H5Writer w(dir / "t.h5");
    w.write("a", at::zeros({1}));
  }
  EXPECT_EQ(testing::dir_entries(dir.path()), std::vector<std::string>{"t.h5"});
  EXPECT_EQ(testing::read_text(dir / "t.h5"), "an old result");

  {  // committed: only the final file
    H5Writer w(dir / "t.h5");
    w.write("a", at::ones({3}));
    w.commit();
  }
  EXPECT_EQ(testing::dir_entries(dir.path()), std::vector<std::string>{"t.h5"});
  expect_identical(H5Reader(dir / "t.h5").read("a"), at::ones({3}), "committed");
}

TEST(H5Writer, CannotCreateFileNamesPath) {
  TempDir dir;
  write_text(dir / "blocker", "x");
  std::string msg = error_of([&] { H5Writer w(dir / "blocker" / "t.h5"); });
  EXPECT_TRUE(contains(msg, (dir / "blocker" / "t.h5").string()) && contains(msg, "writable")) << msg;
  msg = error_of([&] { H5Writer::open_in_place(dir / "blocker" / "t.h5"); });
  EXPECT_TRUE(contains(msg, (dir / "blocker" / "t.h5").string())) << msg;
  msg = error_of([&] { H5Writer::resume_in_place(dir / "none.h5"); });
  EXPECT_TRUE(contains(msg, (dir / "none.h5").string()) && contains(msg, "no such file")) << msg;
  EXPECT_EQ(testing::dir_entries(dir.path()), std::vector<std::string>{"blocker"});
}

TEST(H5Extendible, AppendInPiecesEqualsConcatenation) {
  at::manual_seed(2);
  TempDir dir;
  const std::vector<int64_t> pieces{0, 1, 7, 3, 13, 0, 4, 31, 2};  // chunk_rows = 4
  std::vector<at::Tensor> f32, i64, u8;
  {
    H5Writer w(dir / "t.h5");
    auto a = w.create_extendible("acts/layer_00", at::kFloat, {3, 5}, 4);
    auto b = w.create_extendible("ids", at::kLong, {}, 4);
    auto c = w.create_extendible("mask", at::kBool, {2}, 16);
    EXPECT_EQ(a.rows(), 0);
    EXPECT_EQ(a.inner_shape(), (std::vector<int64_t>{3, 5}));
    EXPECT_EQ(c.dtype(), at::kByte);
    for (size_t i = 0; i < pieces.size(); ++i) {
      int64_t n = pieces[i];
      at::Tensor x = at::randn({n, 3, 5});
      // alternate float32 and bfloat16 inputs (both stored as float32), and strided views
      if (i % 2 == 1) x = x.to(at::kBFloat16);
      if (i % 3 == 2) x = at::randn({n, 5, 3}).transpose(1, 2);
      a.append(x);
      f32.push_back(x.to(at::kFloat));
      at::Tensor id = at::randint(-1000000, 1000000, {n}, at::kLong);
      b.append(id);
      i64.push_back(id);
      at::Tensor m = random_tensor(at::kBool, {n, 2});
      c.append(m);
      u8.push_back(m.to(at::kByte));
    }
    EXPECT_EQ(a.rows(), 61);
    std::string msg = error_of([&] { a.append(at::randn({2, 5, 3})); });
    EXPECT_TRUE(contains(msg, "/acts/layer_00") && contains(msg, "[-1, 3, 5]")) << msg;
    msg = error_of([&] { a.append(at::zeros({2, 3, 5}, at::kLong)); });
    EXPECT_TRUE(contains(msg, "/acts/layer_00") && contains(msg, ".to(at::kFloat)")) << msg;
    EXPECT_EQ(a.rows(), 61);
    msg = error_of([&] { w.create_extendible("ids", at::kLong, {}, 4); });
    EXPECT_TRUE(contains(msg, "already exists")) << msg;
    w.commit();
    msg = error_of([&] { a.append(at::zeros({1, 3, 5})); });
    EXPECT_TRUE(contains(msg, "committed")) << msg;
  }
  H5Reader r(dir / "t.h5");
  expect_identical(r.read("acts/layer_00"), at::cat(f32), "float rows");
  expect_identical(r.read("ids"), at::cat(i64), "int64 rows");
  expect_identical(r.read("mask"), at::cat(u8), "bool rows");
  // read_rows: slabs across chunk boundaries, empty slabs, the end
  at::Tensor all = at::cat(f32);
  for (auto [start, count] :
       std::vector<std::pair<int64_t, int64_t>>{{0, 61}, {3, 5}, {60, 1}, {61, 0}, {17, 0}, {2, 40}}) {
    expect_identical(r.read_rows("acts/layer_00", start, count), all.slice(0, start, start + count),
                     "rows " + std::to_string(start) + "+" + std::to_string(count));
  }
  std::string msg = error_of([&] { r.read_rows("acts/layer_00", 60, 2); });
  EXPECT_TRUE(contains(msg, "61 rows") && contains(msg, "/acts/layer_00")) << msg;
  EXPECT_NE(error_of([&] { r.read_rows("acts/layer_00", -1, 1); }), "");
}

TEST(H5Extendible, ResizeTruncates) {
  TempDir dir;
  at::Tensor x = at::arange(40, at::kFloat).reshape({20, 2});
  {
    H5Writer w(dir / "t.h5");
    auto e = w.create_extendible("x", at::kFloat, {2}, 8);
    e.append(x.slice(0, 0, 13));
    e.resize(9);
    EXPECT_EQ(e.rows(), 9);
    e.append(x.slice(0, 9, 20));
    EXPECT_NE(error_of([&] { e.resize(21); }), "");
    w.commit();
  }
  expect_identical(H5Reader(dir / "t.h5").read("x"), x, "after resize");
}

// Run in a child process by FlushMakesDataReadableByAnotherProcess (disabled otherwise):
// prints the row count and sum of dataset "acts" in the file named by the parent.
TEST(H5FileChild, DISABLED_ReadsFileNamedByParent) {
  const char* file = std::getenv("LMINF_H5_TEST_CHILD_FILE");
  ASSERT_NE(file, nullptr);
  H5Reader r(file);
  at::Tensor t = r.read("acts");
  std::printf("child: rows=%lld sum=%.17g attr=%lld\n", static_cast<long long>(t.size(0)),
              t.to(at::kDouble).sum().item<double>(), static_cast<long long>(r.attr_int("/", "steps")));
}

std::string summary(const at::Tensor& t, int64_t steps) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), "child: rows=%lld sum=%.17g attr=%lld", static_cast<long long>(t.size(0)),
                t.to(at::kDouble).sum().item<double>(), static_cast<long long>(steps));
  return buf;
}

// What another process sees in `file` (the output of DISABLED_ReadsFileNamedByParent).
std::string read_in_child(const fs::path& file) {
  std::string exe = fs::read_symlink("/proc/self/exe").string();
  std::string out;
  int rc = testing::run_command("LMINF_H5_TEST_CHILD_FILE='" + file.string() + "' '" + exe +
                                    "' --gtest_also_run_disabled_tests"
                                    " --gtest_filter=H5FileChild.DISABLED_ReadsFileNamedByParent",
                                &out);
  EXPECT_EQ(rc, 0) << out;
  size_t at = out.find("child: ");
  return at == std::string::npos ? out : out.substr(at, out.find('\n', at) - at);
}

TEST(H5Writer, FlushMakesDataReadableByAnotherProcess) {
  at::manual_seed(3);
  TempDir dir;
  const fs::path file = dir / "stream.h5";
  at::Tensor first = at::randn({10, 4}), second = at::randn({5, 4});
  H5Writer w = H5Writer::open_in_place(file);
  auto e = w.create_extendible("acts", at::kFloat, {4}, 4);
  e.append(first);
  w.set_attr("/", "steps", 1);
  w.flush();
  EXPECT_EQ(read_in_child(file), summary(first, 1));
  {  // and in this process, while the writer is open
    H5Reader r(file);
    expect_identical(r.read("acts"), first, "in-process reader");
  }
  e.append(second);
  w.set_attr("/", "steps", 2);
  w.flush();
  EXPECT_EQ(read_in_child(file), summary(at::cat({first, second}), 2));
  w.commit();
  EXPECT_EQ(testing::dir_entries(dir.path()), std::vector<std::string>{"stream.h5"});
  expect_identical(H5Reader(file).read("acts"), at::cat({first, second}), "after commit");
}

TEST(H5Writer, OpenInPlaceReplacesOldFile) {
  TempDir dir;
  write_text(dir / "t.h5", "old contents");
  H5Writer w = H5Writer::open_in_place(dir / "t.h5");
  w.write("a", at::ones({2}));
  w.flush();
  expect_identical(H5Reader(dir / "t.h5").read("a"), at::ones({2}), "in place");
}

TEST(H5Extendible, ResumesAfterCleanCloseAndAfterKill) {
  at::manual_seed(4);
  TempDir dir;
  at::Tensor a = at::randn({10, 3}), b = at::randn({3, 3}), c = at::randn({6, 3});
  // A run that wrote 10 rows and ended without commit(): the destructor closes the file.
  {
    H5Writer w = H5Writer::open_in_place(dir / "clean.h5");
    w.create_extendible("acts", at::kFloat, {3}, 4).append(a);
  }
  {
    H5Writer w = H5Writer::resume_in_place(dir / "clean.h5");
    auto e = w.open_extendible("/acts");
    EXPECT_EQ(e.rows(), 10);
    EXPECT_EQ(e.dtype(), at::kFloat);
    EXPECT_EQ(e.inner_shape(), std::vector<int64_t>{3});
    e.append(c);
    w.commit();
  }
  expect_identical(H5Reader(dir / "clean.h5").read("acts"), at::cat({a, c}), "clean resume");

  // A run killed after flushing 10 rows and appending 3 more: resume at the last flushed count.
  const fs::path killed = dir / "killed.h5";
  int status = 0;
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    try {
      auto* w = new H5Writer(H5Writer::open_in_place(killed));  // never destroyed: like kill -9
      auto* e = new H5Writer::Extendible(w->create_extendible("acts", at::kFloat, {3}, 4));
      e->append(a);
      w->set_attr("/", "rows_done", e->rows());
      w->flush();
      e->append(b);
    } catch (...) {
      ::_exit(2);
    }
    ::_exit(0);
  }
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  {
    H5Writer w = H5Writer::resume_in_place(killed);
    H5Reader r(killed);
    int64_t done = r.attr_int("/", "rows_done");
    EXPECT_EQ(done, 10);
    auto e = w.open_extendible("acts");
    ASSERT_GE(e.rows(), done);
    expect_identical(r.read_rows("acts", 0, done), a, "flushed rows survive a kill");
    e.resize(done);
    e.append(c);
    w.set_attr("/", "rows_done", e.rows());
    w.commit();
  }
  H5Reader r(killed);
  expect_identical(r.read("acts"), at::cat({a, c}), "killed resume");
  EXPECT_EQ(r.attr_int("/", "rows_done"), 16);
}

TEST(H5Extendible, OpenExtendibleRefusesPlainDataset) {
  TempDir dir;
  {
    H5Writer w = H5Writer::open_in_place(dir / "t.h5");
    w.write("plain", at::zeros({4, 2}));
  }
  H5Writer w = H5Writer::resume_in_place(dir / "t.h5");
  std::string msg = error_of([&] { w.open_extendible("plain"); });
  EXPECT_TRUE(contains(msg, "/plain") && contains(msg, "not extendible")) << msg;
  msg = error_of([&] { w.open_extendible("missing"); });
  EXPECT_TRUE(contains(msg, "/missing") && contains(msg, "holds: plain")) << msg;
}

TEST(H5Reader, ErrorsNameThePath) {
  TempDir dir;
  std::string msg = error_of([&] { H5Reader r(dir / "missing.h5"); });
  EXPECT_TRUE(contains(msg, (dir / "missing.h5").string()) && contains(msg, "no such file")) << msg;
  write_text(dir / "notes.txt", "not hdf5 at all\n");
  msg = error_of([&] { H5Reader r(dir / "notes.txt"); });
  EXPECT_TRUE(contains(msg, (dir / "notes.txt").string()) && contains(msg, "not an HDF5 file")) << msg;
  write_text(dir / "empty.h5", "");
  msg = error_of([&] { H5Reader r(dir / "empty.h5"); });
  EXPECT_TRUE(contains(msg, (dir / "empty.h5").string())) << msg;
  msg = error_of([&] { H5Reader r(dir.path()); });
  EXPECT_TRUE(contains(msg, "folder")) << msg;

  {
    H5Writer w(dir / "t.h5");
    w.write("g/x", at::zeros({3}));
    w.write("s", at::scalar_tensor(1.5));
    w.commit();
  }
  H5Reader r(dir / "t.h5");
  msg = error_of([&] { r.read("g/y"); });
  EXPECT_TRUE(contains(msg, (dir / "t.h5").string()) && contains(msg, "/g/y") && contains(msg, "holds: x"))
      << msg;
  msg = error_of([&] { r.read("g"); });
  EXPECT_TRUE(contains(msg, "is a group")) << msg;
  msg = error_of([&] { r.list("g/x"); });
  EXPECT_TRUE(contains(msg, "not a group")) << msg;
  msg = error_of([&] { r.read_rows("s", 0, 1); });
  EXPECT_TRUE(contains(msg, "scalar")) << msg;
  EXPECT_EQ(r.read("s").item<double>(), 1.5);
}

// Found by fuzz/h5_readers_fuzz.cpp: a string attribute holding bytes that are not UTF-8 came back
// as it was and failed far from the file (nlohmann's dump of analyze's summary.json). Both string
// layouts are refused naming the file, the object, the attribute and the byte offset.
TEST(H5Reader, StringAttributesThatAreNotUtf8AreRefused) {
  TempDir dir;
  const std::string bad = std::string("vani") + static_cast<char>(0xCA) + "lla";
  {
    H5Writer w(dir / "t.h5");
    w.set_attr("/", "variable", bad);  // variable-length, as H5Writer and h5py write strings
    w.set_attr("/", "fine", "caf\xC3\xA9");
    w.commit();
  }
  {  // a fixed-length string attribute (h5py's numpy bytes), written with the C API
    const hid_t f = H5Fopen((dir / "t.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, bad.size());
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t a = H5Acreate2(f, "fixed", type, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, type, bad.data());
    H5Aclose(a);
    H5Sclose(space);
    H5Tclose(type);
    H5Fclose(f);
  }
  H5Reader r(dir / "t.h5");
  EXPECT_EQ(r.attr_string("/", "fine"), "caf\xC3\xA9");
  for (const char* name : {"variable", "fixed"}) {
    const std::string msg = error_of([&] { r.attr_string("/", name); });
    EXPECT_TRUE(contains(msg, (dir / "t.h5").string()) && contains(msg, name) && contains(msg, "UTF-8") &&
                contains(msg, "byte 4"))
        << msg;
  }
}

// Open HDF5 identifiers of every kind: equal before and after a scenario means nothing leaked.
std::vector<hsize_t> open_h5_ids() {
  std::vector<hsize_t> out;
  for (H5I_type_t t :
       {H5I_FILE, H5I_GROUP, H5I_DATATYPE, H5I_DATASPACE, H5I_DATASET, H5I_ATTR, H5I_GENPROP_LST}) {
    hsize_t n = 0;
    H5Inmembers(t, &n);
    out.push_back(n);
  }
  return out;
}

TEST(H5Writer, ClosesEveryHandleAlsoOnErrors) {
  TempDir dir;
  {  // the first use creates the library's own identifiers (default property lists, types)
    H5Writer w(dir / "w.h5");
    w.commit();
    H5Reader r(dir / "w.h5");
  }
  const std::vector<hsize_t> before = open_h5_ids();
  {
    H5Writer w(dir / "t.h5");
    w.write("a/b", at::randn({40, 40}));
    w.set_attr("a", "s", "text");
    w.set_attr("a/b", "v", std::vector<double>{1, 2});
    auto e = w.create_extendible("e", at::kInt, {2}, 4);
    e.append(at::zeros({3, 2}, at::kInt));
    EXPECT_NE(error_of([&] { w.write("a/b", at::zeros({1})); }), "");
    EXPECT_NE(error_of([&] { w.write("a/b/c", at::zeros({1})); }), "");
    EXPECT_NE(error_of([&] { w.set_attr("zz", "k", 1.0); }), "");
    EXPECT_NE(error_of([&] { e.append(at::zeros({3, 3}, at::kInt)); }), "");
    w.commit();  // e is still alive: commit closes its dataset
    EXPECT_NE(error_of([&] { e.append(at::zeros({3, 2}, at::kInt)); }), "");
  }
  {
    H5Reader r(dir / "t.h5");
    r.read("a/b");
    r.read_rows("e", 1, 2);
    r.attr_string("a", "s");
    r.attr_doubles("a/b", "v");
    r.list("/");
    EXPECT_NE(error_of([&] { r.read("nope"); }), "");
    EXPECT_NE(error_of([&] { r.attr_int("a", "s"); }), "");
    EXPECT_NE(error_of([&] { r.read_rows("e", 2, 5); }), "");
  }
  {
    std::optional<H5Writer::Extendible> e;
    {
      H5Writer w = H5Writer::open_in_place(dir / "p.h5");
      e.emplace(w.create_extendible("e", at::kFloat, {2}, 4));
      e->append(at::zeros({3, 2}));
    }  // the writer goes without commit() while its Extendible lives on
    std::string msg = error_of([&] { e->append(at::zeros({1, 2})); });
    EXPECT_TRUE(contains(msg, "committed or destroyed")) << msg;
  }
  EXPECT_EQ(open_h5_ids(), before);
}

TEST(H5Writer, FileOpensWithH5dump) {
  if (testing::run_command("command -v h5dump") != 0) GTEST_SKIP() << "h5dump not installed (hdf5-tools)";
  TempDir dir;
  {
    H5Writer w(dir / "t.h5");
    w.write("factor1/layer_03/logits", at::randn({3, 1037}));
    w.set_attr("/", "config", "a: 1");
    w.set_attr("factor1", "scales", std::vector<double>{1, 2});
    w.create_extendible("ids", at::kLong, {}, 8).append(at::arange(5));
    w.commit();
  }
  std::string out;
  EXPECT_EQ(testing::run_command("h5dump -H '" + (dir / "t.h5").string() + "'", &out), 0) << out;
  EXPECT_TRUE(contains(out, "logits") && contains(out, "config")) << out;
}

// A dataset whose declared shape the file cannot back (a chunked dataset of 29 TiB with no chunk
// written: a few KB on disk) is refused naming the file, the dataset and its shape before the reader
// allocates; a small dataset with no chunks written still reads (its fill value).
TEST(H5Reader, DeclaredShapesCheckedBeforeAllocating) {
  TempDir d;
  const auto p = d / "lazy.h5";
  {
    hid_t f = H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    auto lazy = [&](const char* name, std::vector<hsize_t> dims) {
      std::vector<hsize_t> chunk(dims.size(), 1);
      chunk.back() = dims.back();
      hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
      hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
      H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data());
      hid_t ds = H5Dcreate2(f, name, H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
      H5Dclose(ds);
      H5Pclose(dcpl);
      H5Sclose(space);
    };
    lazy("huge", {1000000, 1000000, 8});
    lazy("small", {4, 8});
    H5Fclose(f);
  }
  H5Reader r(p);
  const std::string e = lminf::testing::error_of([&] { r.read("huge"); });
  EXPECT_NE(e.find(p.string() + ": dataset '/huge' declares shape [1000000, 1000000, 8]"), std::string::npos) << e;
  const std::string rows = lminf::testing::error_of([&] { r.read_rows("huge", 0, 1); });
  EXPECT_NE(rows.find("declares shape"), std::string::npos) << rows;
  EXPECT_EQ(r.read("small").numel(), 32);
}

}  // namespace
}  // namespace lminf
