// What the C++ loops share: ATen's CPU vectors (AVX-512 or AVX2 + Sleef's exp/tanh when the
// build has them) and a walk over the columns of one row of a (B, H) buffer, one vector at a time.

#pragma once

#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cstdint>

namespace rnnlab {

template <typename T> using Vec = at::vec::Vectorized<T>;

template <typename T> inline Vec<T> sigmoid(const Vec<T>& x) {
  return Vec<T>(T(1)) / (Vec<T>(T(1)) + x.neg().exp());
}

template <typename T> inline Vec<T> load(const T* p, int64_t count) {
  return Vec<T>::loadu(p, count);
}

// Asks for the cache line kAhead floats past p, for reading or (`write`) for writing. The gate
// loops walk 8-12 buffers at once, one line of each per vector; each step's rows come from L3
// after the step's product has streamed the weight through L2, and without these requests the
// loops wait on each line (the hardware prefetcher restarts at every 4 KB page).
inline constexpr int64_t kAhead = 256;
template <bool write = false, typename T> inline void fetch_ahead(const T* p) {
  __builtin_prefetch(p + kAhead, write ? 1 : 0, 3);
}

// fn(j, count) over the columns 0..H-1 of one row, one vector (of `count` lanes) at a time.
template <typename T, typename Fn> inline void columns(int64_t H, const Fn& fn) {
  const int64_t lanes = Vec<T>::size();
  for (int64_t j = 0; j < H; j += lanes) fn(j, std::min(lanes, H - j));
}

}  // namespace rnnlab
