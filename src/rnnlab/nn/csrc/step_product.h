// The per-step product of a time loop, a (B, K) @ (K, N) with a batch of 8-64 rows and a weight
// of 0.1-5 MB, hand-written for AVX-512 because the general GEMMs are weak at this shape.
//
// Why: MKL's sgemm (torch.mm) ran a GRU's (20, 650) x (650, 1950) step at 86-116 GFLOP/s on the
// project's Xeon, about half of its 175 on large products, and the step products were 40% of a
// 2x650 GRU's training step. The weight (5 MB) does not fit the 2 MiB L2, so each step streams
// it from L3 (23 GB/s here against 64-107 in L2), and a batch of 20 rows gives little
// arithmetic per byte to hide that. This kernel
// - lays the weight out once per sequence in panels of 32 columns (K x 32, contiguous), so that
//   one panel is one sequential stream;
// - computes all rows against one panel before moving to the next (row tiles of up to 14, each
//   2 x 16 columns: 28 accumulators in the 32 AVX-512 registers), so the weight is read from L3
//   once per step, and the batch's rows (at most 64 x K) stay in L1/L2;
// - prefetches 4 KB ahead in the panel stream, and walks the panels forward and backward on
//   alternate calls, so the panels the last call read last are still in L2 when the next begins.
// Measured against torch.mm / addmm at one thread, one sequence of products each, the layout
// included (`python benchmarks/step_product.py`, three runs): (20, 650) x (650, 1950) 1.62-1.73x
// (137-141 against 79-88 GFLOP/s), its backward 1.25-1.28x; (32, 512) x (512, 1536) 1.21-1.25x,
// backward 1.16-1.18x; 1.01-1.28x at the narrower layers of configs (a), (d), (f).
//
// Each output is the same sum, in the same order of k, whichever direction a call walks and
// however many threads share the panels, so the results depend on neither. Used for float32 on
// builds with AVX-512; elsewhere (float64, or RNNLAB_NATIVE_STEP_GEMM=0) the loops keep torch's
// products. At two threads, on a Zen 5 EPYC, the panels split between them ran 2.3-4.1x as fast
// as torch.mm's threaded product on the shapes above (`step_product.py --threads 2`), and
// 1.1-3.0x as fast as oneDNN's packed linear; on the Intel Xeon of earlier stops, the kernel at
// one thread lost to MKL at two, and the split was not measured there.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <string>
#include <utility>

#include "block_cache.h"

#if defined(CPU_CAPABILITY_AVX512)
#include <immintrin.h>
#endif

namespace rnnlab {

class StepProduct {
 public:
  // at 64 rows it only matches MKL (config (d): 1.01-1.05x), so larger batches stay with MKL
  static constexpr int64_t kMaxRows = 64;

  // Whether this build has the kernel (AVX-512) and RNNLAB_NATIVE_STEP_GEMM=0 does not turn
  // it off.
  static bool available() {
#if defined(CPU_CAPABILITY_AVX512)
    static const bool enabled = [] {
      const char* flag = std::getenv("RNNLAB_NATIVE_STEP_GEMM");
      return flag == nullptr || std::string(flag) != "0";
    }();
    return enabled;
#else
    return false;
#endif
  }

  // Whether the kernel serves products of `rows` rows with this weight.
  static bool applies(const at::Tensor& weight, int64_t rows) {
    return available() && weight.scalar_type() == at::kFloat && weight.device().is_cpu() &&
           rows > 0 && rows <= kMaxRows;
  }

  // The right factor of `a @ B`: B = weight^T when `transposed` (the forward's h W^T, weight
  // (N, K)), else B = weight (the backward's d W, weight (K, N)).
  StepProduct(const at::Tensor& weight, bool transposed) {
    const at::Tensor w = weight.contiguous();
    k_ = transposed ? w.size(1) : w.size(0);
    n_ = transposed ? w.size(0) : w.size(1);
    const int64_t panels = (n_ + kCols - 1) / kCols;
    panels_ = cached_empty({panels * k_ * kCols}, w.options());
    pack(w.const_data_ptr<float>(), transposed, panels_.data_ptr<float>());
  }

  // B = the rows of `first`, then those of `rest` (both (., N)), laid out from where they lie:
  // dW_hh's right factor h_{t-1} over all steps, h0 then the states but the last, with no
  // copy of them into one buffer first.
  StepProduct(const at::Tensor& first, const at::Tensor& rest) {
    const at::Tensor head = first.contiguous(), tail = rest.contiguous();
    k_ = head.size(0) + tail.size(0);
    n_ = head.size(1);
    const int64_t panels = (n_ + kCols - 1) / kCols;
    panels_ = cached_empty({panels * k_ * kCols}, head.options());
    pack(tail.const_data_ptr<float>(), false, panels_.data_ptr<float>(),
         head.const_data_ptr<float>(), head.size(0));
  }

  // c (M, N) = [a, tail] (M, K) @ B, plus `base` (M, N) where it is defined: `tail`, where
  // defined, holds the last columns of the left factor apart from `a` (the full GRU's d_hn
  // beside d_rz). Rows of a, tail, c and base are contiguous (stride(1) == 1); c may be base.
  void multiply(const at::Tensor& a, at::Tensor& c, const at::Tensor& base,
                const at::Tensor& tail = at::Tensor()) const {
#if defined(CPU_CAPABILITY_AVX512)
    const int64_t k_tail = tail.defined() ? tail.size(1) : 0;
    TORCH_CHECK(a.size(1) + k_tail == k_ && c.size(1) == n_ && a.stride(1) == 1 &&
                c.stride(1) == 1 && (!base.defined() || base.stride(1) == 1) &&
                (!tail.defined() || (tail.stride(1) == 1 && tail.size(0) == a.size(0))),
                "StepProduct: shapes do not match");
    reverse_ = !reverse_;
    const Left left{a.const_data_ptr<float>(), a.stride(0), a.size(1),
                    tail.defined() ? tail.const_data_ptr<float>() : nullptr,
                    tail.defined() ? tail.stride(0) : 0, false};
    run(left, a.size(0), c.data_ptr<float>(), c.stride(0),
        base.defined() ? base.const_data_ptr<float>() : nullptr,
        base.defined() ? base.stride(0) : 0);
#else
    (void)a, (void)c, (void)base, (void)tail;
    TORCH_CHECK(false, "StepProduct needs an AVX-512 build");
#endif
  }

  // c (M, N) = a (M, K) @ B for any number of rows M, as row blocks of kBlockRows (see
  // `run_passes`), B laid out once for all of them: the loops' weight gradients dW = d^T x
  // over all T*B rows (recurrences.cpp: `weight_grad`). a is row-major (element (r, k) at
  // a[r * lda + k]) or, with `column_major`, at a[r + k * lda]: the transposed view d^T, read
  // as it lies (the tile broadcasts a's elements one at a time, so it takes either order with
  // no transposing copy). Rows of c are contiguous, ldc apart. With more torch threads each
  // takes a share of the blocks. (The input projections and their gradients ran no faster
  // this way than on oneDNN, so they stay there.)
  void multiply_rows(const float* a, int64_t lda, bool column_major, int64_t m, float* c,
                     int64_t ldc) const {
#if defined(CPU_CAPABILITY_AVX512)
    const int64_t blocks = (m + kBlockRows - 1) / kBlockRows;
    const auto run_blocks = [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t row = i * kBlockRows, rows = std::min(kBlockRows, m - row);
        const Left left{column_major ? a + row : a + row * lda, lda, k_, nullptr, 0,
                        column_major};
        run_passes(left, rows, c + row * ldc, ldc);
      }
    };
    if (blocks > 1 && at::get_num_threads() > 1 && !at::in_parallel_region()) {
      at::parallel_for(0, blocks, 1, run_blocks);
    } else {
      run_blocks(0, blocks);
    }
#else
    (void)a, (void)lda, (void)column_major, (void)m, (void)c, (void)ldc;
    TORCH_CHECK(false, "StepProduct needs an AVX-512 build");
#endif
  }

 private:
  // rows of a large product's left factor per pass over the panels: 64 x 256 depth (64 KB)
  // stays in L2 while each panel streams past it
  static constexpr int64_t kBlockRows = 64;
  static constexpr int64_t kLeftLead = 8;  // k-rows ahead, for a column-major left factor
  static constexpr int64_t kCols = 32;       // a panel's width: two AVX-512 vectors
  static constexpr int kMaxTileRows = 14;    // 28 accumulators of the 32 registers
  static constexpr int64_t kDepth = 256;     // most k per pass over a panel: 32 KB, in L1
  static constexpr int64_t kPrefetch = 1024; // floats ahead in the panel stream (4 KB)
  // With more torch threads, each computes a share of the panels. 35 products of (20, 200) x
  // (200, 600) (1.6M multiply-adds) took 0.41 ms at two threads against 0.69 at one, on a Zen 5
  // EPYC; a product of a few microseconds (sampling: one row) stays on one thread.
  static constexpr int64_t kMinMultiplyAddsToSplit = 1 << 20;

  // The panels of B, zero past the last column. Only AVX-512 builds construct a StepProduct.
  // Each reads w in order and asks for what comes next: a panel's layout costs about as much
  // as 2-3 of its steps' products, and laid out a panel at a time from a cold w, it waited on
  // memory. Measured for a (650, 1950) weight from a cold cache, the layout and one product
  // (median of 60, ABBA, one thread): 0.94 -> 0.90 ms transposed, 0.93 -> 0.83 ms the other.
  // Without `transposed`, B's first `first_rows` rows may come from `first`, the rest from w.
  void pack(const float* w, bool transposed, float* out, const float* first = nullptr,
            int64_t first_rows = 0) const {
#if defined(CPU_CAPABILITY_AVX512)
    const int64_t panels = (n_ + kCols - 1) / kCols;
    if (transposed) {  // B[k][n] = w[n][k]: panel column j is row p*32 + j of w
      for (int64_t p = 0; p < panels; ++p) {
        float* panel = out + p * k_ * kCols;
        const int64_t width = std::min(kCols, n_ - p * kCols);
        // the panel's rows of w are one block; the next panel's is asked for into L2 meanwhile
        const char* next = reinterpret_cast<const char*>(w + (p + 1) * kCols * k_);
        const int64_t lines =
            p + 1 < panels ? std::min(kCols, n_ - (p + 1) * kCols) * k_ * 4 / 64 : 0;
        const int64_t per_step = (lines + (k_ + 15) / 16 - 1) / ((k_ + 15) / 16);
        // 16 rows x 16 k at a time, transposed in registers: written element by element, a
        // panel took longer to lay out than three of its steps' products
        for (int64_t k0 = 0, line = 0; k0 < k_; k0 += 16) {
          for (const int64_t until = std::min(lines, line + per_step); line < until; ++line) {
            _mm_prefetch(next + line * 64, _MM_HINT_T1);
          }
          const int64_t depth = std::min<int64_t>(16, k_ - k0);
          const __mmask16 along_k =
              depth == 16 ? 0xFFFF : static_cast<__mmask16>((1u << depth) - 1);
          for (int64_t j0 = 0; j0 < kCols; j0 += 16) {
            __m512 block[16];
            for (int64_t i = 0; i < 16; ++i) {  // rows past the last column read as 0
              const bool row = j0 + i < width;
              block[i] = _mm512_maskz_loadu_ps(row ? along_k : 0,
                                               row ? w + (p * kCols + j0 + i) * k_ + k0 : w);
            }
            transpose16(block);
            for (int64_t i = 0; i < depth; ++i) {
              _mm512_storeu_ps(panel + (k0 + i) * kCols + j0, block[i]);
            }
          }
        }
      }
      return;
    }
    // B[k][n] = w[k][n]: row k of panel p is columns 32p.. of row k of w. Row by row of w,
    // scattered over the panels: w is one sequential stream (a panel at a time, its rows 2-8 KB
    // apart, gave the hardware prefetcher nothing to follow)
    for (int64_t k = 0; k < k_; ++k) {
      const float* row = k < first_rows ? first + k * n_ : w + (k - first_rows) * n_;
      for (int64_t p = 0; p < panels; ++p) {
        const int64_t width = std::min(kCols, n_ - p * kCols);
        const __mmask16 low = width >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << width) - 1);
        const __mmask16 high = width <= 16 ? 0
                               : width >= 32 ? 0xFFFF
                                             : static_cast<__mmask16>((1u << (width - 16)) - 1);
        float* to = out + (p * k_ + k) * kCols;
        const float* from = row + p * kCols;
        _mm512_storeu_ps(to, _mm512_maskz_loadu_ps(low, from));
        _mm512_storeu_ps(to + 16, _mm512_maskz_loadu_ps(high, high ? from + 16 : from));
      }
    }
#else
    (void)w, (void)transposed, (void)out, (void)first, (void)first_rows;
#endif
  }

#if defined(CPU_CAPABILITY_AVX512)
  // r[i] = row i of a 16 x 16 block -> r[m] = column m: pairs of rows interleaved, then groups
  // of four, then the 128-bit lanes gathered across the groups.
  static void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; ++i) {  // per lane: a0 b0 a1 b1, a2 b2 a3 b3
      t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; ++i) {  // r[4i + c], lane L: column 4L + c of rows 4i..4i+3
      r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
      r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
      r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
      r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    __m512 column[16];
    for (int c = 0; c < 4; ++c) {  // column 4L + c: lane L of r[c], r[4+c], r[8+c], r[12+c]
      const __m512 even_front = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);  // lanes 0, 2
      const __m512 odd_front = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xDD);   // lanes 1, 3
      const __m512 even_back = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
      const __m512 odd_back = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xDD);
      column[c] = _mm512_shuffle_f32x4(even_front, even_back, 0x88);
      column[8 + c] = _mm512_shuffle_f32x4(even_front, even_back, 0xDD);
      column[4 + c] = _mm512_shuffle_f32x4(odd_front, odd_back, 0x88);
      column[12 + c] = _mm512_shuffle_f32x4(odd_front, odd_back, 0xDD);
    }
    std::copy_n(column, 16, r);
  }

  // Rows [0, R) of c's 32 columns of one panel over k in [0, depth): c = init + a B.
  template <int R, bool ColumnMajor>
  static void tile(const float* a, int64_t lda, const float* panel, int64_t depth, float* c,
                   int64_t ldc, const float* init, int64_t ld_init, __mmask16 low,
                   __mmask16 high, bool fetch, const float* ahead, int64_t ahead_until,
                   const float* then, bool fetch_left) {
    __m512 left[R], right[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      left[r] = init ? _mm512_maskz_loadu_ps(low, init + r * ld_init) : _mm512_setzero_ps();
      right[r] = init ? _mm512_maskz_loadu_ps(high, init + r * ld_init + 16) : _mm512_setzero_ps();
    }
    for (int64_t k = 0; k < depth; ++k) {
      if (fetch && (k < ahead_until || then != nullptr)) {
        // the stream kPrefetch floats on: this panel, then the next (none after the last)
        const char* line = reinterpret_cast<const char*>(
            k < ahead_until ? ahead + k * kCols : then + (k - ahead_until) * kCols);
        _mm_prefetch(line, _MM_HINT_T0);
        _mm_prefetch(line + 64, _MM_HINT_T0);
      }
      if (ColumnMajor && fetch_left) {
        // a's rows of a block lie across its k-rows, each in another page, where the hardware
        // prefetchers do not follow: ask for the block's 64 columns kLeftLead k-rows on
        const char* line = reinterpret_cast<const char*>(a + (k + kLeftLead) * lda);
        for (int i = 0; i < 5; ++i) _mm_prefetch(line + i * 64, _MM_HINT_T0);
      }
      const __m512 b_low = _mm512_loadu_ps(panel + k * kCols);
      const __m512 b_high = _mm512_loadu_ps(panel + k * kCols + 16);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const __m512 a_rk = _mm512_set1_ps(ColumnMajor ? a[k * lda + r] : a[r * lda + k]);
        left[r] = _mm512_fmadd_ps(a_rk, b_low, left[r]);
        right[r] = _mm512_fmadd_ps(a_rk, b_high, right[r]);
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      _mm512_mask_storeu_ps(c + r * ldc, low, left[r]);
      _mm512_mask_storeu_ps(c + r * ldc + 16, high, right[r]);
    }
  }

  // The left factor, its columns [0, split) at `head` and [split, K) at `tail`.
  // With `column_major` (no tail), element (r, k) of head is head[r + k * ld_head].
  struct Left {
    const float* head;
    int64_t ld_head, split;
    const float* tail;
    int64_t ld_tail;
    bool column_major;
  };

  using Tile = void (*)(const float*, int64_t, const float*, int64_t, float*, int64_t,
                        const float*, int64_t, __mmask16, __mmask16, bool, const float*,
                        int64_t, const float*, bool);
  template <bool ColumnMajor, int... R>
  static constexpr std::array<Tile, sizeof...(R)> tiles(std::integer_sequence<int, R...>) {
    return {&tile<R + 1, ColumnMajor>...};
  }

  void run(const Left& left, int64_t m, float* c, int64_t ldc, const float* base,
           int64_t ld_base) const {
    const int64_t panels = (n_ + kCols - 1) / kCols;
    if (m * k_ * n_ >= kMinMultiplyAddsToSplit && panels > 1 && at::get_num_threads() > 1 &&
        !at::in_parallel_region()) {
      at::parallel_for(0, panels, 1, [&](int64_t begin, int64_t end) {
        run_panels(left, m, c, ldc, base, ld_base, begin, end);
      });
      return;
    }
    run_panels(left, m, c, ldc, base, ld_base, 0, panels);
  }

  // A block of a large product (at most kBlockRows rows of a, no tail): pass by pass over k,
  // every panel's rows of that pass against the block's columns of it. The block's share of
  // a pass (64 x 256, 64 KB) and its rows of c (64 x N) stay in L2 while the panels stream
  // past. Walked panel by panel as `run_panels` does, a block as deep as dW's T*B rows (4096
  // for config (c): 1 MB of a) is read from L3 again for every panel: (4096, 2048)^T x (4096,
  // 512) took 48.2 ms that way against 45.2 by passes, (3200, 768)^T x (3200, 256) 6.45
  // against 6.09 (one thread, medians of 8 ABBA blocks); the shallower ones of configs (a),
  // (b), (f) within 2% either way.
  void run_passes(const Left& left, int64_t m, float* c, int64_t ldc) const {
    static constexpr auto kRowTiles =
        tiles<false>(std::make_integer_sequence<int, kMaxTileRows>{});
    static constexpr auto kColumnTiles =
        tiles<true>(std::make_integer_sequence<int, kMaxTileRows>{});
    const auto& kTiles = left.column_major ? kColumnTiles : kRowTiles;
    const int64_t panels = (n_ + kCols - 1) / kCols;
    const int64_t row_tiles = (m + kMaxTileRows - 1) / kMaxTileRows;
    const int64_t row_step = left.column_major ? 1 : left.ld_head;
    const int64_t lead = kPrefetch / kCols;
    const float* packed = panels_.const_data_ptr<float>();
    const int64_t passes = (k_ + kDepth - 1) / kDepth;
    for (int64_t pass = 0, k0 = 0; pass < passes; ++pass) {
      const int64_t depth = (k_ - k0 + (passes - pass) - 1) / (passes - pass);
      const float* a = left.column_major ? left.head + k0 * left.ld_head : left.head + k0;
      for (int64_t p = 0; p < panels; ++p) {
        const int64_t col = p * kCols, width = std::min(kCols, n_ - col);
        const __mmask16 low = width >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << width) - 1);
        const __mmask16 high = width <= 16 ? 0
                               : width >= 32 ? 0xFFFF
                                             : static_cast<__mmask16>((1u << (width - 16)) - 1);
        const float* slice = packed + (p * k_ + k0) * kCols;  // this pass's rows of panel p
        // the stream goes on into the next panel's rows of this pass, or the next pass's first
        const float* next = p + 1 < panels ? slice + k_ * kCols
                            : k0 + depth < k_ ? packed + (k0 + depth) * kCols
                                              : nullptr;
        const int64_t ahead_until = std::clamp<int64_t>(depth - lead, 0, depth);
        const float* ahead = ahead_until > 0 ? slice + lead * kCols : nullptr;
        const float* then = next ? next + (ahead_until + lead - depth) * kCols : nullptr;
        int64_t row = 0;
        for (int64_t t = 0; t < row_tiles; ++t) {
          const int64_t rows = (m - row) / (row_tiles - t);
          float* out = c + row * ldc + col;
          kTiles[rows - 1](a + row * row_step, left.ld_head, slice, depth, out, ldc,
                           k0 > 0 ? out : nullptr, ldc, low, high, t == 0, ahead, ahead_until,
                           then, p == 0 && t == 0);
          row += rows;
        }
      }
      k0 += depth;
    }
  }

  // panels [first, last) of a step's product (a row-major, at most kMaxRows rows)
  void run_panels(const Left& left, int64_t m, float* c, int64_t ldc, const float* base,
                  int64_t ld_base, int64_t first, int64_t last) const {
    static constexpr auto kTiles = tiles<false>(std::make_integer_sequence<int, kMaxTileRows>{});
    const int64_t panels = last - first;
    const int64_t row_tiles = (m + kMaxTileRows - 1) / kMaxTileRows;
    const float* packed = panels_.const_data_ptr<float>();
    for (int64_t i = 0; i < panels; ++i) {
      const int64_t p = first + (reverse_ ? panels - 1 - i : i);
      const int64_t col = p * kCols, width = std::min(kCols, n_ - col);
      const __mmask16 low = width >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << width) - 1);
      const __mmask16 high = width <= 16 ? 0
                             : width >= 32 ? 0xFFFF
                                           : static_cast<__mmask16>((1u << (width - 16)) - 1);
      const float* panel = packed + p * k_ * kCols;
      // the panel after this one in this call's walk (none after the last)
      const float* next =
          i + 1 == panels ? nullptr : packed + (reverse_ ? p - 1 : p + 1) * k_ * kCols;
      for (int64_t k0 = 0, depth = 0; k0 < k_; k0 += depth) {
        // passes of at most kDepth, of near-equal depth, that do not cross from head to tail
        const bool in_head = k0 < left.split;
        const int64_t rest = (in_head ? left.split : k_) - k0;
        const int64_t passes_left = (rest + kDepth - 1) / kDepth;
        depth = (rest + passes_left - 1) / passes_left;
        const float* a = in_head ? left.head + k0 : left.tail + (k0 - left.split);
        const int64_t lda = in_head ? left.ld_head : left.ld_tail;
        // position k of this pass reads row k0 + k of the panel and fetches the row `lead`
        // rows on in the stream: this panel's up to k = ahead_until, then the next panel's
        const int64_t lead = kPrefetch / kCols;
        const int64_t ahead_until = std::clamp<int64_t>(k_ - k0 - lead, 0, depth);
        const float* ahead = ahead_until > 0 ? panel + (k0 + lead) * kCols : nullptr;
        const float* then = next ? next + (k0 + ahead_until + lead - k_) * kCols : nullptr;
        int64_t row = 0;
        for (int64_t t = 0; t < row_tiles; ++t) {  // tiles of near-equal height
          const int64_t rows = (m - row) / (row_tiles - t);
          const float* init = k0 > 0 ? c + row * ldc + col
                              : base ? base + row * ld_base + col : nullptr;
          // the first row tile streams the panel from L3 and fetches ahead (the next panel
          // on the way); the others read it from L1
          kTiles[rows - 1](a + row * lda, lda, panel + k0 * kCols, depth,
                           c + row * ldc + col, ldc, init, k0 > 0 ? ldc : ld_base, low, high,
                           t == 0, ahead, ahead_until, then, false);
          row += rows;
        }
      }
    }
  }
#endif

  int64_t k_ = 0, n_ = 0;
  at::Tensor panels_;
  mutable bool reverse_ = true;  // flipped before each call: the first walks forward
};

}  // namespace rnnlab
