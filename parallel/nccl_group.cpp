#include "parallel/nccl_group.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>

#include "framework/core/error.h"

namespace lminf {
namespace {

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail(what, " failed: ", cudaGetErrorString(e));
}

void check_nccl(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) fail(what, " failed: ", ncclGetErrorString(r));
}

ncclDataType_t nccl_type(NcclDtype t) {
  switch (t) {
    case NcclDtype::kFloat32: return ncclFloat32;
    case NcclDtype::kFloat64: return ncclFloat64;
    case NcclDtype::kBFloat16: return ncclBfloat16;
    case NcclDtype::kFloat16: return ncclFloat16;
    case NcclDtype::kInt64: return ncclInt64;
    case NcclDtype::kInt32: return ncclInt32;
    case NcclDtype::kInt8: return ncclInt8;
    case NcclDtype::kUInt8: return ncclUint8;
  }
  fail("NcclGroup: unknown dtype");
}

ncclComm_t as_comm(void* c) { return static_cast<ncclComm_t>(c); }
cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

}  // namespace

static_assert(NcclGroup::kIdBytes == NCCL_UNIQUE_ID_BYTES, "NCCL unique id size changed");

NcclGroup::UniqueId NcclGroup::new_unique_id() {
  ncclUniqueId id;
  check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  UniqueId out;
  std::memcpy(out.data(), id.internal, kIdBytes);
  return out;
}

std::string NcclGroup::version_string() {
  int nccl = 0, cuda = 0;
  ncclGetVersion(&nccl);
  cudaRuntimeGetVersion(&cuda);
  return "NCCL " + std::to_string(nccl / 10000) + "." + std::to_string(nccl / 100 % 100) + "." +
         std::to_string(nccl % 100) + ", CUDA runtime " + std::to_string(cuda);
}

int NcclGroup::device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

NcclGroup::NcclGroup(const UniqueId& id, int rank, int size, int device) : rank_(rank), size_(size), device_(device) {
  const int n = device_count();
  if (device < 0 || device >= n)
    fail("NCCL: CUDA device ", device, " requested but ", n, " visible (rank ", rank, " of ", size,
         "; one GPU per rank: set CUDA_VISIBLE_DEVICES or launch fewer ranks per node)");
  check_cuda(cudaSetDevice(device), "cudaSetDevice");
  ncclUniqueId nid;
  std::memcpy(nid.internal, id.data(), kIdBytes);
  ncclComm_t c = nullptr;
  check_nccl(ncclCommInitRank(&c, size, nid, rank), "ncclCommInitRank");
  comm_ = c;
}

NcclGroup::~NcclGroup() {
  if (comm_) ncclCommDestroy(as_comm(comm_));
}

void NcclGroup::all_reduce(void* buf, size_t count, NcclDtype dtype, NcclReduce op, void* stream) {
  check_nccl(ncclAllReduce(buf, buf, count, nccl_type(dtype), op == NcclReduce::kSum ? ncclSum : ncclMax,
                           as_comm(comm_), as_stream(stream)),
             "ncclAllReduce");
}

void NcclGroup::all_gather(const void* send, void* recv, size_t count, NcclDtype dtype, void* stream) {
  check_nccl(ncclAllGather(send, recv, count, nccl_type(dtype), as_comm(comm_), as_stream(stream)), "ncclAllGather");
}

void NcclGroup::broadcast(void* buf, size_t count, NcclDtype dtype, int root, void* stream) {
  check_nccl(ncclBroadcast(buf, buf, count, nccl_type(dtype), root, as_comm(comm_), as_stream(stream)),
             "ncclBroadcast");
}

void NcclGroup::synchronize(void* stream) {
  check_cuda(cudaStreamSynchronize(as_stream(stream)), "cudaStreamSynchronize");
  ncclResult_t async = ncclSuccess;
  check_nccl(ncclCommGetAsyncError(as_comm(comm_), &async), "ncclCommGetAsyncError");
  check_nccl(async, "NCCL (asynchronous error)");
}

}  // namespace lminf
