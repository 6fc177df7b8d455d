// Seeded draws that are the same on every platform and standard library (std:: distributions are
// implementation-defined): SplitMix64 (Steele et al.) as hash and generator. Tasks that make their
// own inputs (passkey, ruler) derive each sample's stream from (seed, the sample's coordinates), so a
// sample does not change when other samples are added.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace lminf {

// One SplitMix64 step: a well-mixed 64-bit hash of x.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// FNV-1a of a string (names as coordinates of a sample).
inline uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xCBF29CE484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ULL;
  return h;
}

// A generator over one sample's stream: SplitMix64 on a counter.
class SampleRng {
 public:
  explicit SampleRng(uint64_t seed) : state_(seed) {}
  // The stream of `seed` and the coordinates `parts` (hashed in order).
  SampleRng(uint64_t seed, std::initializer_list<uint64_t> parts) : state_(splitmix64(seed)) {
    for (uint64_t p : parts) state_ = splitmix64(state_ ^ p);
  }
  uint64_t next() { return splitmix64(state_ += 0x9E3779B97F4A7C15ULL); }
  // Uniform in [0, n), n >= 1 (rejection: no modulo bias).
  uint64_t below(uint64_t n) {
    const uint64_t limit = ~uint64_t{0} - (~uint64_t{0} % n);
    for (;;) {
      const uint64_t x = next();
      if (x < limit) return x % n;
    }
  }
  // Uniform in [lo, hi].
  int64_t in_range(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo) + 1));
  }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  // Fisher-Yates.
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<size_t>(below(i))]);
  }
  // k distinct indices of [0, n), in the order drawn (k <= n).
  std::vector<int64_t> distinct(int64_t n, int64_t k);

 private:
  uint64_t state_;
};

// Distinct indices of [0, n), drawn one at a time (a partial Fisher-Yates shuffle kept sparse:
// O(draws) memory and time).
class DistinctDraws {
 public:
  DistinctDraws(SampleRng& rng, int64_t n) : rng_(rng), n_(n) {}
  bool exhausted() const { return i_ >= n_; }
  int64_t next() {
    const int64_t j = i_ + static_cast<int64_t>(rng_.below(static_cast<uint64_t>(n_ - i_)));
    const int64_t vi = at(i_), vj = at(j);
    moved_[j] = vi;
    moved_[i_++] = vj;
    return vj;
  }

 private:
  int64_t at(int64_t i) const {
    const auto it = moved_.find(i);
    return it == moved_.end() ? i : it->second;
  }
  SampleRng& rng_;
  int64_t n_, i_ = 0;
  std::unordered_map<int64_t, int64_t> moved_;  // position -> value where the permutation moved it
};

inline std::vector<int64_t> SampleRng::distinct(int64_t n, int64_t k) {
  DistinctDraws d(*this, n);
  std::vector<int64_t> out;
  for (int64_t i = 0; i < k; ++i) out.push_back(d.next());
  return out;
}

}  // namespace lminf
