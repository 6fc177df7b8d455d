// Every collective of the MPI communicator against a local computation: each rank builds every
// rank's input deterministically, so the expected result is computed without communication.
#include <gtest/gtest.h>

#include "framework/core/error.h"
#include "parallel/process_grid.h"
#include "tests/parallel/mpi/mpi_world.h"

namespace lminf {
namespace {
using lminf::testing::mpi_world;

// Rank r's input: small integers (exact in every dtype, so sums are exact in any order).
at::Tensor input_of(int r, std::vector<int64_t> shape, at::ScalarType dtype, int salt = 0) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  at::Tensor i = at::arange(n, at::kLong);
  at::Tensor v = (i * (3 + salt) + 7 * r + salt) % 23 - 11;  // in [-11, 11]
  if (dtype == at::kByte) v = v + 11;                          // unsigned
  return v.view(shape).to(dtype);
}

const std::vector<at::ScalarType> kDtypes = {at::kFloat, at::kDouble, at::kBFloat16, at::kHalf,
                                             at::kLong,  at::kInt,    at::kChar,     at::kByte};

TEST(MpiCollectives, RankAndSize) {
  Communicator& w = mpi_world();
  EXPECT_EQ(w.name(), "mpi");
  at::Tensor ranks = at::tensor({static_cast<int64_t>(w.rank())}, at::kLong);
  at::Tensor all = w.all_gather(ranks, 0);
  EXPECT_TRUE(at::equal(all, at::arange(w.size(), at::kLong)));
}

TEST(MpiCollectives, AllReduceSumAndMaxEveryDtype) {
  Communicator& w = mpi_world();
  for (at::ScalarType dt : kDtypes) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMax}) {
      at::Tensor want = input_of(0, {5, 7}, dt).to(at::kDouble);
      for (int r = 1; r < w.size(); ++r) {
        at::Tensor x = input_of(r, {5, 7}, dt).to(at::kDouble);
        want = op == ReduceOp::kSum ? want + x : at::maximum(want, x);
      }
      if (dt == at::kChar && op == ReduceOp::kSum && w.size() > 8) continue;  // would overflow int8
      at::Tensor t = input_of(w.rank(), {5, 7}, dt);
      w.all_reduce(t, op);
      EXPECT_EQ(t.scalar_type(), dt);
      EXPECT_TRUE(at::equal(t.to(at::kDouble), want)) << c10::toString(dt) << (op == ReduceOp::kSum ? " sum" : " max");
    }
  }
}

TEST(MpiCollectives, AllReduceBFloat16SumsInFloat32) {
  // 1 + 2^-9 + ... : rounding each partial sum to bfloat16 would lose the small terms; one rounding at
  // the end keeps their total.
  Communicator& w = mpi_world();
  at::Tensor t = at::full({3}, w.rank() == 0 ? 1.0 : 1.0 / 512, at::kFloat).to(at::kBFloat16);
  w.all_reduce(t, ReduceOp::kSum);
  const double want = 1.0 + (w.size() - 1) / 512.0;
  EXPECT_EQ(t[0].item<float>(), at::tensor({want}, at::kDouble).to(at::kBFloat16).item<float>());
}

TEST(MpiCollectives, AllReduceRandomFloatsAndNonContiguousInPlace) {
  Communicator& w = mpi_world();
  auto rand_of = [](int r) {
    at::Generator g = at::detail::createCPUGenerator(100 + static_cast<uint64_t>(r));
    return at::randn({13, 6}, g);
  };
  at::Tensor want = at::zeros({13, 6}, at::kDouble);
  for (int r = 0; r < w.size(); ++r) want += rand_of(r).to(at::kDouble);
  at::Tensor base = rand_of(w.rank()).t().contiguous();  // [6, 13]
  at::Tensor view = base.t();                           // [13, 6], not contiguous
  ASSERT_FALSE(view.is_contiguous());
  w.all_reduce(view, ReduceOp::kSum);
  EXPECT_LT((view.to(at::kDouble) - want).abs().max().item<double>(), 1e-5);
  EXPECT_LT((base.t().to(at::kDouble) - want).abs().max().item<double>(), 1e-5);  // written in place
}

TEST(MpiCollectives, AllGatherAlongEveryDimEveryDtype) {
  Communicator& w = mpi_world();
  for (at::ScalarType dt : kDtypes) {
    for (int64_t dim : {0, 1, 2, -1}) {
      std::vector<at::Tensor> parts;
      for (int r = 0; r < w.size(); ++r) parts.push_back(input_of(r, {3, 5, 2}, dt, 1));
      at::Tensor got = w.all_gather(input_of(w.rank(), {3, 5, 2}, dt, 1), dim);
      EXPECT_TRUE(at::equal(got, at::cat(parts, dim))) << c10::toString(dt) << " dim " << dim;
    }
  }
  // A non-contiguous input gathers by value.
  at::Tensor x = input_of(w.rank(), {4, 3}, at::kFloat).t();
  std::vector<at::Tensor> parts;
  for (int r = 0; r < w.size(); ++r) parts.push_back(input_of(r, {4, 3}, at::kFloat).t());
  EXPECT_TRUE(at::equal(w.all_gather(x, 1), at::cat(parts, 1)));
}

TEST(MpiCollectives, AllGatherRefusesDifferentShapes) {
  Communicator& w = mpi_world();
  if (w.size() == 1) GTEST_SKIP() << "needs more than one rank";
  at::Tensor x = at::zeros({2, 3 + (w.rank() == 1 ? 1 : 0)});
  try {
    w.all_gather(x, 0);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("different shapes"), std::string::npos) << e.what();
  }
}

TEST(MpiCollectives, BroadcastFromEveryRoot) {
  Communicator& w = mpi_world();
  for (int root = 0; root < w.size(); ++root) {
    for (at::ScalarType dt : {at::kFloat, at::kBFloat16, at::kLong}) {
      at::Tensor t = input_of(w.rank(), {7, 3}, dt, 2);
      w.broadcast(t, root);
      EXPECT_TRUE(at::equal(t, input_of(root, {7, 3}, dt, 2))) << "root " << root;
    }
    at::Tensor nc = input_of(w.rank(), {3, 7}, at::kFloat).t();  // non-contiguous, in place
    w.broadcast(nc, root);
    EXPECT_TRUE(at::equal(nc, input_of(root, {3, 7}, at::kFloat).t()));
  }
  at::Tensor t = at::zeros({1});
  EXPECT_THROW(w.broadcast(t, w.size()), Error);
}

TEST(MpiCollectives, SplitOrdersByKeyAndReducesWithinGroups) {
  Communicator& w = mpi_world();
  const int color = w.rank() % 2;
  auto sub = w.split(color, -w.rank());  // reverse order inside each group
  std::vector<int> members;
  for (int r = 0; r < w.size(); ++r)
    if (r % 2 == color) members.push_back(r);
  ASSERT_EQ(sub->size(), static_cast<int>(members.size()));
  EXPECT_EQ(sub->rank(), static_cast<int>(members.size()) - 1 -
                             static_cast<int>(std::find(members.begin(), members.end(), w.rank()) - members.begin()));
  at::Tensor t = at::tensor({static_cast<double>(w.rank())}, at::kDouble);
  sub->all_reduce(t, ReduceOp::kSum);
  double want = 0;
  for (int m : members) want += m;
  EXPECT_EQ(t.item<double>(), want);
  sub->barrier();
  w.barrier();
}

TEST(ProcessGrid, GroupsAreConsecutiveForTpAndStridedForDp) {
  Communicator& w = mpi_world();
  for (int tp = 1; tp <= w.size(); ++tp) {
    if (w.size() % tp != 0) continue;
    const int dp = w.size() / tp;
    ProcessGrid g(w, tp, dp);
    EXPECT_EQ(g.tp().size(), tp);
    EXPECT_EQ(g.dp().size(), dp);
    EXPECT_EQ(g.tp_rank(), w.rank() % tp);
    EXPECT_EQ(g.dp_rank(), w.rank() / tp);
    EXPECT_EQ(g.writer(), w.rank() == 0);
    // Members of this rank's TP group: the tp consecutive ranks of its replica.
    at::Tensor mine = at::tensor({static_cast<int64_t>(w.rank())}, at::kLong);
    EXPECT_TRUE(at::equal(g.tp().all_gather(mine, 0), at::arange(g.dp_rank() * tp, (g.dp_rank() + 1) * tp, at::kLong)));
    EXPECT_TRUE(at::equal(g.dp().all_gather(mine, 0), at::arange(g.tp_rank(), w.size(), tp, at::kLong)));
  }
  EXPECT_THROW(ProcessGrid(w, w.size() + 1, 1), Error);
}

}  // namespace
}  // namespace lminf
