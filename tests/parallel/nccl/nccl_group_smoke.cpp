// NCCL group layer on one GPU (ctest label gpu): a single-rank group's all-reduce, all-gather and
// broadcast on device buffers leave the data as a one-rank collective must. Needs no libtorch, so it
// runs on any machine with a GPU, the CUDA runtime and NCCL. Exit 77 (skipped) without a GPU.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <exception>
#include <vector>

#include "parallel/nccl_group.h"

namespace {

int check(bool ok, const char* what) {
  std::printf("%s: %s\n", what, ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}

}  // namespace

int main() {
  using lminf::NcclGroup;
  std::printf("%s\n", NcclGroup::version_string().c_str());
  if (NcclGroup::device_count() == 0) {
    std::printf("no CUDA device: skipped\n");
    return 77;
  }
  try {
    NcclGroup g(NcclGroup::new_unique_id(), 0, 1, 0);
    const size_t n = 1000003;  // odd size
    std::vector<float> host(n);
    for (size_t i = 0; i < n; ++i) host[i] = std::sin(static_cast<float>(i));
    float *buf = nullptr, *out = nullptr;
    if (cudaMalloc(&buf, n * sizeof(float)) != cudaSuccess || cudaMalloc(&out, n * sizeof(float)) != cudaSuccess) {
      std::printf("cudaMalloc failed\n");
      return 1;
    }
    cudaStream_t s = nullptr;
    cudaStreamCreate(&s);
    cudaMemcpy(buf, host.data(), n * sizeof(float), cudaMemcpyHostToDevice);
    g.all_reduce(buf, n, lminf::NcclDtype::kFloat32, lminf::NcclReduce::kSum, s);
    g.all_reduce(buf, n, lminf::NcclDtype::kFloat32, lminf::NcclReduce::kMax, s);
    g.all_gather(buf, out, n, lminf::NcclDtype::kFloat32, s);
    g.broadcast(out, n * sizeof(float), lminf::NcclDtype::kUInt8, 0, s);
    g.synchronize(s);
    std::vector<float> back(n), back2(n);
    cudaMemcpy(back.data(), buf, n * sizeof(float), cudaMemcpyDeviceToHost);
    cudaMemcpy(back2.data(), out, n * sizeof(float), cudaMemcpyDeviceToHost);
    int bad = 0;
    bad += check(back == host, "all_reduce sum+max over 1 rank is the identity");
    bad += check(back2 == host, "all_gather + broadcast over 1 rank copy the data");
    cudaFree(buf);
    cudaFree(out);
    cudaStreamDestroy(s);
    return bad ? 1 : 0;
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
}
