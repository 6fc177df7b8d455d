// What escapes a command (experiments/cli/uncaught.h): user errors as they are; ATen errors,
// allocation failures and other exceptions as "internal error" with the command, no stack trace.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstdlib>
#include <new>

#include "experiments/cli/uncaught.h"
#include "framework/core/error.h"

namespace lminf {
namespace {

template <class F>
UncaughtReport report_of(F&& f, const std::vector<std::string>& args = {"run", "exp.yaml"}) {
  try {
    f();
  } catch (...) {
    return describe_uncaught(std::current_exception(), args);
  }
  ADD_FAILURE() << "nothing thrown";
  return {};
}

TEST(Uncaught, UserErrorsPrintAsThey) {
  const UncaughtReport r = report_of([] { fail("exp.yaml: task.max_length must be >= 2"); });
  EXPECT_TRUE(r.user_error);
  EXPECT_EQ(r.message, "error: exp.yaml: task.max_length must be >= 2");
}

TEST(Uncaught, AtenErrorsWithoutStackTrace) {
  ::unsetenv("LMINF_DEBUG");
  const UncaughtReport r = report_of([] { at::ones({2}).index_select(0, at::full({1}, 7, at::kLong)); });
  EXPECT_FALSE(r.user_error);
  EXPECT_EQ(r.message.rfind("internal error: the tensor library failed: ", 0), 0u) << r.message;
  EXPECT_NE(r.message.find("while running `lminf run exp.yaml`"), std::string::npos) << r.message;
  EXPECT_EQ(r.message.find("Exception raised from"), std::string::npos) << r.message;
  EXPECT_EQ(r.message.find("c10::"), std::string::npos) << r.message;
  EXPECT_EQ(r.message.find('\n'), std::string::npos) << r.message;
}

TEST(Uncaught, AllocationFailuresAndOthersAreInternal) {
  UncaughtReport r = report_of([] { throw std::bad_alloc(); }, {"analyze", "x.h5"});
  EXPECT_FALSE(r.user_error);
  EXPECT_NE(r.message.find("internal error: out of memory"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("lminf analyze x.h5"), std::string::npos) << r.message;
  r = report_of([] { LMINF_CHECK(1 + 1 == 3, "arithmetic"); });
  EXPECT_NE(r.message.find("internal error: "), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("check failed: 1 + 1 == 3: arithmetic"), std::string::npos) << r.message;
  r = report_of([] { throw 42; });
  EXPECT_NE(r.message.find("internal error: an unknown exception"), std::string::npos) << r.message;
}

}  // namespace
}  // namespace lminf
