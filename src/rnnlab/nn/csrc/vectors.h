// What the C++ loops share: ATen's CPU vectors (AVX-512 or AVX2 + Sleef's exp/tanh when the
// build has them) and a walk over the columns of one row of a (B, H) buffer, one vector at a time.

#pragma once

#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

namespace rnnlab {

template <typename T> using Vec = at::vec::Vectorized<T>;

template <typename T> inline Vec<T> sigmoid(const Vec<T>& x) {
  return Vec<T>(T(1)) / (Vec<T>(T(1)) + x.neg().exp());
}

// The training loops' activations, cheaper in float32: e^x by ATen's exp_u20 (a degree-5
// polynomial, within 20 ULP: about 2e-6 relative, where Sleef's exp is within 1), tanh as
// 2σ(2x) - 1 (absolute error about 1e-6, as fused.py's Python loops compute it). The LSTM's
// forward loop over a (c) sequence (B32 T128 H512, peephole) took 43.4 ms with them against
// 52.6 with Sleef's exp and tanh, whose step products alone take 36.6-39.8. NaN stays NaN
// (exp_u20 clamps its input). Float64 keeps Sleef's.
template <typename T> inline Vec<T> fast_sigmoid(const Vec<T>& x) {
  if constexpr (std::is_same_v<T, float>) {
    const Vec<T> y = Vec<T>(T(1)) / (Vec<T>(T(1)) + x.neg().exp_u20());
    return Vec<T>::blendv(y, x, x.isnan());
  } else {
    return sigmoid(x);
  }
}

template <typename T> inline Vec<T> fast_tanh(const Vec<T>& x) {
  if constexpr (std::is_same_v<T, float>) {
    return fast_sigmoid(x + x) * Vec<T>(T(2)) - Vec<T>(T(1));
  } else {
    return x.tanh();
  }
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
