#include "parallel/shard.h"

#include <algorithm>
#include <sstream>

#include "framework/core/error.h"

namespace lminf {

Shard even_shard(int64_t n, int rank, int size, const std::string& what) {
  if (size <= 0 || rank < 0 || rank >= size) fail("even_shard: rank ", rank, " outside [0, ", size, ")");
  if (n % size != 0)
    fail(what, " (", n, ") is not divisible by parallel.tensor_parallel (", size,
         "): choose a tensor_parallel size that divides it");
  const int64_t len = n / size;
  return Shard{rank * len, len};
}

Shard balanced_shard(int64_t n, int rank, int size, const std::string& what) {
  if (size <= 0 || rank < 0 || rank >= size) fail("balanced_shard: rank ", rank, " outside [0, ", size, ")");
  if (n < size)
    fail(what, " (", n, ") is smaller than parallel.tensor_parallel (", size, "): choose a smaller tensor_parallel");
  const int64_t base = n / size, extra = n % size;
  return Shard{rank * base + std::min<int64_t>(rank, extra), base + (rank < extra ? 1 : 0)};
}

HeadShard head_shard(int64_t n_head, int64_t n_head_kv, int rank, int tp) {
  HeadShard s;
  s.q = even_shard(n_head, rank, tp, "num_attention_heads");
  const int64_t g = n_head / n_head_kv;
  if (n_head_kv % tp == 0) {
    s.kv = even_shard(n_head_kv, rank, tp, "num_key_value_heads");
  } else {
    // Replication: this rank's query heads [q.start, q.start+q.length) read kv heads h / g.
    const int64_t first = s.q.start / g;
    const int64_t last = (s.q.start + s.q.length - 1) / g;
    s.kv = Shard{first, last - first + 1};
  }
  // Local query head i must read local kv head i / (q.length / kv.length), as in the unsplit model.
  bool ok = s.q.length % s.kv.length == 0;
  for (int64_t i = 0; ok && i < s.q.length; ++i) {
    ok = (s.q.start + i) / g - s.kv.start == i / (s.q.length / s.kv.length);
  }
  if (!ok) {
    fail("cannot split ", n_head, " query heads and ", n_head_kv, " key/value heads over ", tp,
         " tensor-parallel ranks: each rank's query heads must share whole key/value heads");
  }
  return s;
}

std::string tp_incompatibility(int64_t n_head, int64_t n_head_kv, int64_t intermediate_size, int64_t vocab_size,
                               int tp) {
  std::ostringstream os;
  if (tp < 1) return "parallel.tensor_parallel must be >= 1";
  if (n_head % tp != 0)
    os << "num_attention_heads (" << n_head << ") is not divisible by tensor_parallel (" << tp << "); ";
  if (n_head_kv % tp != 0 && tp % n_head_kv != 0)
    os << "num_key_value_heads (" << n_head_kv << ") neither divides nor is divisible by tensor_parallel (" << tp
       << "); ";
  // The MLP splits unevenly when it must (balanced_shard); it only needs a row per rank.
  if (intermediate_size < tp)
    os << "intermediate_size (" << intermediate_size << ") is smaller than tensor_parallel (" << tp << "); ";
  if (vocab_size % tp != 0)
    os << "vocab_size (" << vocab_size << ") is not divisible by tensor_parallel (" << tp << "); ";
  std::string s = os.str();
  if (!s.empty()) s.resize(s.size() - 2);
  return s;
}

}  // namespace lminf
