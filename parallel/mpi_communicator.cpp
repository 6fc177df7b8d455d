#include "parallel/mpi_communicator.h"

#define OMPI_SKIP_MPICXX 1  // the C API only (OpenMPI and MPICH otherwise pull in C++ bindings)
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <cstdlib>

#include <array>
#include <climits>
#include <cstdio>
#include <exception>
#include <vector>

#include "framework/core/error.h"

namespace lminf {
namespace {

std::string mpi_error_string(int code) {
  char buf[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(buf, static_cast<size_t>(len));
}

void check(int code, const char* what) {
  if (code != MPI_SUCCESS) fail(what, " failed: ", mpi_error_string(code));
}

// MPI counts are int: refuse what does not fit rather than truncate silently.
int as_count(int64_t n, const char* what) {
  if (n > INT_MAX)
    fail(what, ": ", n, " elements exceed MPI's count limit (", INT_MAX, "); split the tensor into smaller pieces");
  return static_cast<int>(n);
}

void check_cpu(const at::Tensor& t, const char* what) {
  if (!t.defined()) fail("MPI ", what, ": undefined tensor");
  if (!t.device().is_cpu())
    fail("MPI ", what, ": tensor on ", t.device().str(),
         " (the MPI communicator moves CPU tensors; CUDA tensors go through the NCCL communicator)");
}

// The MPI type an all-reduce runs in. bfloat16 and float16 have no MPI type: they are reduced in
// float32 (converted before, rounded once after), which is also more accurate than reducing in 16 bits.
MPI_Datatype reduce_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return MPI_FLOAT;
    case at::kDouble: return MPI_DOUBLE;
    case at::kLong: return MPI_INT64_T;
    case at::kInt: return MPI_INT32_T;
    case at::kShort: return MPI_INT16_T;
    case at::kChar: return MPI_INT8_T;
    case at::kByte: return MPI_UINT8_T;
    default:
      fail("MPI all_reduce: dtype ", c10::toString(t),
           " is not supported (float32/64, bfloat16, float16, int8/16/32/64, uint8)");
  }
}

bool reduced_in_float32(at::ScalarType t) { return t == at::kBFloat16 || t == at::kHalf; }

// A contiguous MPI type of one element of `t` (gathers and broadcasts move bytes, any dtype).
class ElementType {
 public:
  explicit ElementType(size_t bytes) {
    check(MPI_Type_contiguous(static_cast<int>(bytes), MPI_BYTE, &type_), "MPI_Type_contiguous");
    check(MPI_Type_commit(&type_), "MPI_Type_commit");
  }
  ~ElementType() { MPI_Type_free(&type_); }
  ElementType(const ElementType&) = delete;
  ElementType& operator=(const ElementType&) = delete;
  MPI_Datatype get() const { return type_; }

 private:
  MPI_Datatype type_ = MPI_DATATYPE_NULL;
};

class MpiCommunicator final : public Communicator {
 public:
  // Takes ownership of `comm` (freed in the destructor).
  explicit MpiCommunicator(MPI_Comm comm) : comm_(comm) {
    check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  }
  ~MpiCommunicator() override {
    // Freeing is collective in principle: skip it while an exception unwinds (main aborts the job next)
    // and after MPI_Finalize.
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized && std::uncaught_exceptions() == 0) MPI_Comm_free(&comm_);
  }
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  std::string name() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void all_reduce(at::Tensor& t, ReduceOp op) override {
    check_cpu(t, "all_reduce");
    if (t.numel() == 0) return;
    at::Tensor buf = reduced_in_float32(t.scalar_type()) ? t.to(at::kFloat) : t.contiguous();
    const MPI_Op mop = op == ReduceOp::kSum ? MPI_SUM : MPI_MAX;
    check(MPI_Allreduce(MPI_IN_PLACE, buf.data_ptr(), as_count(buf.numel(), "MPI all_reduce"),
                        reduce_type(buf.scalar_type()), mop, comm_),
          "MPI_Allreduce");
    if (!buf.is_same(t)) t.copy_(buf);
  }

  at::Tensor all_gather(const at::Tensor& t, int64_t dim) override {
    check_cpu(t, "all_gather");
    const int64_t nd = t.dim();
    if (nd == 0) fail("MPI all_gather: a 0-d tensor has no dimension to gather along (unsqueeze it first)");
    if (dim < -nd || dim >= nd) fail("MPI all_gather: dim ", dim, " outside a ", nd, "-d tensor");
    if (dim < 0) dim += nd;
    check_same_shape(t);
    at::Tensor src = t.contiguous();
    std::vector<int64_t> shape = src.sizes().vec();
    shape.insert(shape.begin(), size_);
    at::Tensor out = at::empty(shape, src.options());  // [p, *t.shape]
    if (src.numel() > 0) {
      ElementType et(src.element_size());
      const int n = as_count(src.numel(), "MPI all_gather");
      check(MPI_Allgather(src.data_ptr(), n, et.get(), out.data_ptr(), n, et.get(), comm_), "MPI_Allgather");
    }
    // [p, s_0, ..., s_dim, ...] -> [s_0, ..., p * s_dim, ...]: rank r's block follows rank r-1's.
    std::vector<int64_t> cat_shape = t.sizes().vec();
    cat_shape[static_cast<size_t>(dim)] *= size_;
    if (dim == 0) return out.view(cat_shape);
    return out.movedim(0, dim).reshape(cat_shape);
  }

  void broadcast(at::Tensor& t, int root) override {
    check_cpu(t, "broadcast");
    if (root < 0 || root >= size_) fail("MPI broadcast: root ", root, " outside [0, ", size_, ")");
    if (t.numel() == 0) return;
    at::Tensor buf = t.contiguous();
    ElementType et(buf.element_size());
    check(MPI_Bcast(buf.data_ptr(), as_count(buf.numel(), "MPI broadcast"), et.get(), root, comm_), "MPI_Bcast");
    if (!buf.is_same(t)) t.copy_(buf);
  }

  void barrier() override { check(MPI_Barrier(comm_), "MPI_Barrier"); }

  std::unique_ptr<Communicator> split(int color, int key) override {
    if (color < 0) fail("MPI split: color ", color, " must be >= 0");
    MPI_Comm sub = MPI_COMM_NULL;
    check(MPI_Comm_split(comm_, color, key, &sub), "MPI_Comm_split");
    return std::make_unique<MpiCommunicator>(sub);
  }

 private:
  // all_gather needs equal shapes and dtypes on every rank; a mismatch would read past buffers, so it
  // is an error (one small all-reduce: the max of (x, -x) gives max and min of every field at once).
  void check_same_shape(const at::Tensor& t) {
    constexpr int kFields = 10;  // ndim, dtype, up to 8 sizes
    if (t.dim() > kFields - 2) return;  // rare; the byte counts still have to agree
    std::array<int64_t, 2 * kFields> v{};
    v[0] = t.dim();
    v[1] = static_cast<int64_t>(t.scalar_type());
    for (int64_t d = 0; d < t.dim(); ++d) v[static_cast<size_t>(2 + d)] = t.size(d);
    for (int i = 0; i < kFields; ++i) v[static_cast<size_t>(kFields + i)] = -v[static_cast<size_t>(i)];
    check(MPI_Allreduce(MPI_IN_PLACE, v.data(), 2 * kFields, MPI_INT64_T, MPI_MAX, comm_), "MPI_Allreduce");
    for (int i = 0; i < kFields; ++i) {
      if (v[static_cast<size_t>(i)] != -v[static_cast<size_t>(kFields + i)])
        fail("MPI all_gather: ranks hold tensors of different shapes or dtypes (this rank: ", t.sizes(), " ",
             c10::toString(t.scalar_type()), "); all_gather needs equal shapes (pad to a common size)");
    }
  }

  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace

MpiRuntime::~MpiRuntime() {
  if (!initialized_) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

bool launched_by_mpirun() {
  // Open MPI (OMPI_COMM_WORLD_SIZE), PMIx (PMIX_RANK), MPICH / Intel MPI's Hydra (PMI_RANK, PMI_SIZE).
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

std::unique_ptr<Communicator> MpiRuntime::world() {
  int already = 0;
  MPI_Initialized(&already);
  // Not launched by mpirun: a world of one rank without MPI (an MPI singleton costs start-up time).
  if (!already && !launched_by_mpirun()) return std::make_unique<LocalCommunicator>();
  if (!already) {
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    initialized_ = true;
    if (provided < MPI_THREAD_FUNNELED)
      fail("MPI provides thread level ", provided, " < MPI_THREAD_FUNNELED; lminf calls MPI from its main thread "
           "while libtorch runs worker threads");
  }
  MPI_Comm dup = MPI_COMM_NULL;
  check(MPI_Comm_dup(MPI_COMM_WORLD, &dup), "MPI_Comm_dup");
  return std::make_unique<MpiCommunicator>(dup);
}

namespace {
// Whether MPI is initialized and not yet finalized (world queries are valid).
bool mpi_active() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}
}  // namespace

int MpiRuntime::world_rank() const {
  int r = 0;
  if (mpi_active()) MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int MpiRuntime::world_size() const {
  int n = 1;
  if (mpi_active()) MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

void MpiRuntime::abort_job(int code) const {
  if (world_size() <= 1) return;
  std::fflush(stdout);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
}

}  // namespace lminf
