#include "parallel/nccl_communicator.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <cstring>

#include "framework/core/error.h"

namespace lminf {
namespace {

NcclDtype nccl_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return NcclDtype::kFloat32;
    case at::kDouble: return NcclDtype::kFloat64;
    case at::kBFloat16: return NcclDtype::kBFloat16;
    case at::kHalf: return NcclDtype::kFloat16;
    case at::kLong: return NcclDtype::kInt64;
    case at::kInt: return NcclDtype::kInt32;
    case at::kChar: return NcclDtype::kInt8;
    case at::kByte: return NcclDtype::kUInt8;
    default:
      fail("NCCL: dtype ", c10::toString(t), " is not supported (float32/64, bfloat16, float16, int8/32/64, uint8)");
  }
}

}  // namespace

NcclCommunicator::NcclCommunicator(Communicator& bootstrap, int device)
    : NcclCommunicator(bootstrap.split(0, bootstrap.rank()), device) {}

NcclCommunicator::NcclCommunicator(std::unique_ptr<Communicator> boot, int device) : boot_(std::move(boot)) {
  // The unique id travels as 128 bytes in a CPU uint8 tensor over the bootstrap (MPI) communicator.
  at::Tensor id = at::zeros({static_cast<int64_t>(NcclGroup::kIdBytes)}, at::kByte);
  if (boot_->rank() == 0) {
    const NcclGroup::UniqueId uid = NcclGroup::new_unique_id();
    std::memcpy(id.data_ptr(), uid.data(), uid.size());
  }
  boot_->broadcast(id, 0);
  NcclGroup::UniqueId uid;
  std::memcpy(uid.data(), id.data_ptr(), uid.size());
  group_ = std::make_unique<NcclGroup>(uid, boot_->rank(), boot_->size(), device);
}

void NcclCommunicator::all_reduce(at::Tensor& t, ReduceOp op) {
  if (!t.is_cuda()) return boot_->all_reduce(t, op);
  if (t.numel() == 0) return;
  const c10::cuda::CUDAGuard guard(t.device());
  const bool widen = t.scalar_type() == at::kBFloat16 || t.scalar_type() == at::kHalf;
  at::Tensor buf = widen ? t.to(at::kFloat) : t.contiguous();
  void* stream = at::cuda::getCurrentCUDAStream(t.device().index()).stream();
  group_->all_reduce(buf.data_ptr(), static_cast<size_t>(buf.numel()), nccl_dtype(buf.scalar_type()),
                     op == ReduceOp::kSum ? NcclReduce::kSum : NcclReduce::kMax, stream);
  if (!buf.is_same(t)) t.copy_(buf);
}

at::Tensor NcclCommunicator::all_gather(const at::Tensor& t, int64_t dim) {
  if (!t.is_cuda()) return boot_->all_gather(t, dim);
  const int64_t nd = t.dim();
  if (nd == 0) fail("NCCL all_gather: a 0-d tensor has no dimension to gather along (unsqueeze it first)");
  if (dim < -nd || dim >= nd) fail("NCCL all_gather: dim ", dim, " outside a ", nd, "-d tensor");
  if (dim < 0) dim += nd;
  const c10::cuda::CUDAGuard guard(t.device());
  at::Tensor src = t.contiguous();
  std::vector<int64_t> shape = src.sizes().vec();
  shape.insert(shape.begin(), size());
  at::Tensor out = at::empty(shape, src.options());  // [p, *t.shape]
  if (src.numel() > 0) {
    // A byte count hides the dtype from NCCL: gathering moves bytes, any dtype works.
    void* stream = at::cuda::getCurrentCUDAStream(t.device().index()).stream();
    group_->all_gather(src.data_ptr(), out.data_ptr(), static_cast<size_t>(src.numel() * src.element_size()),
                       NcclDtype::kUInt8, stream);
  }
  std::vector<int64_t> cat_shape = t.sizes().vec();
  cat_shape[static_cast<size_t>(dim)] *= size();
  if (dim == 0) return out.view(cat_shape);
  return out.movedim(0, dim).reshape(cat_shape);
}

void NcclCommunicator::broadcast(at::Tensor& t, int root) {
  if (!t.is_cuda()) return boot_->broadcast(t, root);
  if (root < 0 || root >= size()) fail("NCCL broadcast: root ", root, " outside [0, ", size(), ")");
  if (t.numel() == 0) return;
  const c10::cuda::CUDAGuard guard(t.device());
  at::Tensor buf = t.contiguous();
  void* stream = at::cuda::getCurrentCUDAStream(t.device().index()).stream();
  group_->broadcast(buf.data_ptr(), static_cast<size_t>(buf.numel() * buf.element_size()), NcclDtype::kUInt8, root,
                    stream);
  if (!buf.is_same(t)) t.copy_(buf);
}

void NcclCommunicator::barrier() {
  // Finish this rank's GPU work first, then meet the others on the host.
  group_->synchronize(at::cuda::getCurrentCUDAStream(group_->device()).stream());
  boot_->barrier();
}

std::unique_ptr<Communicator> NcclCommunicator::split(int color, int key) {
  return std::unique_ptr<Communicator>(new NcclCommunicator(boot_->split(color, key), group_->device()));
}

}  // namespace lminf
