// The `attention:` section of an experiment. One struct for every variant's parameters; each
// variant states which it uses, and the loader rejects parameters a variant ignores.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace lminf {

struct AttentionSpec {
  std::string variant = "vanilla";
  int64_t block_size = 256;  // query rows per tile of the blockwise kernels
  int64_t key_block_size = 1024;  // key columns per tile (online softmax across tiles)

  template <class V>
  void visit(V& v) {
    v("variant", variant, "attention variant (see `lminf variants`)");
    v("block_size", block_size, "query rows per tile of the blockwise kernel (memory ~ block_size x key_block_size per head)");
    v("key_block_size", key_block_size, "key columns per tile of the blockwise kernel");
  }
};

}  // namespace lminf
