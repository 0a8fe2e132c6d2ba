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

// fn(j, count) over the columns 0..H-1 of one row, one vector (of `count` lanes) at a time.
template <typename T, typename Fn> inline void columns(int64_t H, const Fn& fn) {
  const int64_t lanes = Vec<T>::size();
  for (int64_t j = 0; j < H; j += lanes) fn(j, std::min(lanes, H - j));
}

}  // namespace rnnlab
