// The time loops of fused.py in C++, built on first use by native.py.
//
// Same equations, same saved tensors, same numbers as the Python loops of fused.py (tests hold
// them equal in float64); what changes is the cost per step. A Python time loop issues 8-15
// tensor operations per step, each a dispatch and a pass over memory; here a step is one matrix
// product (torch's own, so MKL/oneDNN) and ONE pass over the gates that applies every
// activation and product of the cell (Vectorized<T>: AVX-512 or AVX2 + Sleef's exp/tanh when
// the build has them). dW_hh and db_hh stay in fused.py: one product over all steps after the loop.
//
// Shapes as in fused.py: x_proj (T, B, G*H) contiguous, h0/c0 (B, H), weight_hh (G*H, H),
// bias_hh (G*H) or undefined, mask (T, B, 1) of 0/1 or undefined. Gate orders: LSTM i, f, g, o;
// GRU r, z, n (minimal: z, n).

#include <torch/extension.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "block_cache.h"
#include "step_product.h"
#include "vectors.h"

namespace {

using at::Tensor;
using rnnlab::Vec;
using rnnlab::cached_empty;
using rnnlab::columns;
using rnnlab::fetch_ahead;
using rnnlab::load;
using rnnlab::fast_sigmoid;
using rnnlab::fast_tanh;
using rnnlab::sigmoid;

// m_b of step t: 1 inside sequence b, 0 past its end; always 1 without a mask.
template <typename T> inline T mask_at(const T* mask, int64_t t, int64_t B, int64_t b) {
  return mask == nullptr ? T(1) : mask[t * B + b];
}

template <typename T> const T* ptr_or_null(const Tensor& x) {
  return x.defined() ? x.const_data_ptr<T>() : nullptr;
}

Tensor defined_or(const std::optional<Tensor>& x) { return x.has_value() ? *x : Tensor(); }

// x + bias (or a copy of x) in a contiguous buffer from the block cache: where a loop starts.
Tensor cached_sum(const Tensor& x, const Tensor& bias) {
  Tensor out = cached_empty(x.sizes(), x.options());
  return bias.defined() ? at::add_out(out, x, bias) : out.copy_(x);
}

Tensor cached_like(const Tensor& x) { return cached_empty(x.sizes(), x.options()); }

// oneDNN's linear, x @ W^T (torch.ops.mkldnn, as fused.py's _Product), for a weight either
// reordered once per sequence (`_reorder_linear_weight`) or plain, of any strides: faster than
// torch.mm for the larger skinny products of a time loop, and for the large products around it
// where `onednn_products` is on.
Tensor onednn_linear(const Tensor& x, const Tensor& weight) {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("mkldnn::_linear_pointwise", "");
  std::vector<c10::IValue> stack{x, weight, c10::IValue(), std::string("none"),
                                 c10::List<std::optional<at::Scalar>>(), std::string("")};
  op.callBoxed(&stack);
  return stack[0].toTensor();
}

// The large products around a time loop (a layer's input projection of all steps, its gradient
// d W_ih, and dW_ih, dW_hh over all T*B rows) through oneDNN instead of torch.mm (MKL), where
// native.py turns it on: on AMD's Zen with AVX-512, MKL runs its AVX2 kernel (85-105 GFLOP/s at
// one thread on a Zen 5 EPYC) and oneDNN its AVX-512 one (180-230), for the shapes of configs
// (a)-(f) of benchmarks/recurrent_speed.py; on Intel's, MKL's own AVX-512 kernel runs.
bool onednn_products = false;

// A product of depth K writes 4 bytes of fresh output per 2K flops: with malloc's defaults, at
// K = 64 (config (c)'s projection, 32 MB) the page faults made oneDNN 0.66x torch.mm into a
// cached buffer; at K = 100 (config (e)) it was 2.06x. Where malloc keeps freed memory (as
// `rnnlab train` has it), native.py lowers this to 1: that projection then took 5.2 ms against
// torch.mm's 12.4.
int64_t onednn_min_depth = 96;

bool large_product_on_onednn(const Tensor& a) {
  return onednn_products && a.scalar_type() == at::kFloat && a.numel() > 0 &&
         a.size(-1) >= onednn_min_depth;
}

// a (M, K) @ b (K, N) on the step product's kernel (step_product.h: `multiply_rows`), into
// `out` (default: a buffer from the block cache): b laid out in panels once (b = W^T of a
// contiguous W, the input projection, takes the transposing layout), a read where it lies,
// row-major or as the transposed view d^T of a weight gradient.
Tensor kernel_product(const Tensor& a, const Tensor& b, std::optional<Tensor> out) {
  const int64_t M = a.size(0), K = a.size(1), N = b.size(1);
  if (!out.has_value()) out = cached_empty({M, N}, a.options());
  TORCH_CHECK(out->stride(1) == 1 || N <= 1, "kernel_product: out's rows must be contiguous");
  const bool b_is_transposed_weight = b.t().is_contiguous() && !b.is_contiguous();
  const rnnlab::StepProduct right(b_is_transposed_weight ? b.t() : b, b_is_transposed_weight);
  Tensor left = a;
  bool column_major = false;
  if (a.stride(1) != 1 && a.stride(0) == 1) {
    column_major = true;
  } else if (a.stride(1) != 1) {
    left = a.contiguous();
  }
  const int64_t lda = column_major ? left.stride(1) : left.stride(0);
  right.multiply_rows(left.const_data_ptr<float>(), lda, column_major, M,
                      out->data_ptr<float>(), out->stride(0));
  return *out;
}

// dW = d^T x on the step product's kernel (step_product.h: `multiply_rows`) instead of the
// large products' library, where native.py turns it on (as `onednn_products`: on non-Intel CPUs
// with AVX-512) and x is at least kernel_min_width wide. It reads d^T as it lies and writes dW
// in place, where either library needs a transposing copy of one factor or of dW. On a Zen 5
// EPYC, against oneDNN with those copies, the dW products of configs (a)-(f) with x 128 wide or
// more at one thread (`python benchmarks/large_products.py`): 1.08-1.26x. Narrower x gains
// less or loses where its last panel of 32 columns is mostly padding: x 100 wide (4 panels for
// 3.1 panels' work) 0.94-1.03x over five runs of two shapes, against 0.99-1.33x at 64 wide.
bool kernel_weight_grads = false;
int64_t kernel_min_width = 128;  // tests lower it to run every layer's dW on the kernel

bool weight_grad_on_kernel(const Tensor& x, int64_t width) {
  return kernel_weight_grads && x.scalar_type() == at::kFloat && x.device().is_cpu() &&
         width >= kernel_min_width && x.numel() > 0 && rnnlab::StepProduct::available();
}

// a (M, K) @ b (K, N), for any strides of a and b: through torch.mm into `out` (M, N; default:
// a buffer from the block cache), or in oneDNN's own fresh output, which has no out= form (a
// copy into a cached buffer cost more than the fresh memory's page faults: 0.62x torch.mm for
// config (c)'s 32 MB projection).
Tensor product(const Tensor& a, const Tensor& b, std::optional<Tensor> out = std::nullopt) {
  if (large_product_on_onednn(a) && b.numel() > 0) {
    return onednn_linear(a, b.t());  // a @ (b^T)^T: oneDNN takes b^T as a strided weight
  }
  if (!out.has_value()) out = cached_empty({a.size(0), b.size(1)}, a.options());
  return at::mm_out(*out, a, b);
}

// a (..., K) @ b (K, N) (see `product` for where it lies): a layer's input projection of all
// steps, x W_ih^T (b = W_ih^T), and its gradient d W_ih. Without bias: the loops add it as they
// read x_proj, which saves addmm's pass that first copies the bias into every row.
Tensor project(const Tensor& a, const Tensor& b) {
  std::vector<int64_t> sizes(a.sizes().begin(), a.sizes().end());
  sizes.back() = b.size(1);
  return product(a.reshape({-1, a.size(-1)}), b).view(sizes);
}

// The h_{t-1} of every step of a loop, (T, B, H): h0, then the states h_all (T, B, H) but its
// last, in one buffer from the block cache, so that dW_hh is one product. (Adding h0's step as
// a second product reads and writes all of dW: 0.42 ms for a (20, 650) GRU layer's 5 MB, at
// one thread, against 0.14 for this copy of its 35 steps.)
Tensor previous_states(const Tensor& h_all, const Tensor& h0) {
  const int64_t T = h_all.size(0);
  Tensor steps = cached_empty(h_all.sizes(), h_all.options());
  steps[0].copy_(h0);
  if (T > 1) steps.narrow(0, 1, T - 1).copy_(h_all.narrow(0, 0, T - 1));
  return steps;
}

// dW = d^T x (N, K) over all rows of d (..., N) and x (..., K), into a buffer from the block
// cache; with `first`, x holds a loop's states h_all and the rows are each step's h_{t-1}
// (`first` = h0 at step 0). d may come in blocks of columns (the full GRU's d_rz and d_hn),
// whose products fill the blocks of rows of dW. torch.mm would return it in fresh memory, which
// faults in page by page: two such gradients of 5 MB were half of a 2x650 GRU step's page
// faults. Both libraries want the left factor's rows contiguous, and it is a transposed view
// here: where one d is at least 4x as wide as x (MKL; oneDNN: wider at all), the product runs
// as (x^T d)^T, which copies the narrower factor. MKL: (4096, 64) and (4096, 1536), 7.5 ms plus
// 0.6 for the copy, against 12.7 ms; oneDNN on a Zen 5: (4096, 64) x (4096, 2048) 128 against
// 40 GFLOP/s, (3200, 300) x (3200, 1200) 213 against 158. Where `weight_grad_on_kernel`, none
// of that: the step product's kernel reads d^T as it lies and writes dW in place.
Tensor weight_grad(const std::vector<Tensor>& blocks, const Tensor& x,
                   const std::optional<Tensor>& first) {
  int64_t N = 0;
  for (const Tensor& d : blocks) N += d.size(-1);
  const int64_t K = x.size(-1);
  Tensor out = cached_empty({N, K}, x.options());
  if (weight_grad_on_kernel(x, K)) {
    // the rows of x (or h0, then the states but the last) laid out once; each block's d^T read
    // where it lies (column-major), into its rows of dW
    const Tensor rows_of_x = x.reshape({-1, K});
    const int64_t kept = rows_of_x.size(0) - (first.has_value() ? first->size(0) : 0);
    const rnnlab::StepProduct right =
        first.has_value() ? rnnlab::StepProduct(*first, rows_of_x.narrow(0, 0, kept))
                          : rnnlab::StepProduct(rows_of_x, /*transposed=*/false);
    int64_t row = 0;
    for (const Tensor& d : blocks) {
      const int64_t n = d.size(-1);
      Tensor rows = d.reshape({-1, n});
      if (rows.stride(1) != 1 && n > 1) rows = rows.contiguous();
      right.multiply_rows(rows.const_data_ptr<float>(), rows.stride(0), /*column_major=*/true,
                          n, out.data_ptr<float>() + row * K, K);
      row += n;
    }
    return out;
  }
  const Tensor inputs = (first.has_value() ? previous_states(x, *first) : x).reshape({-1, K});
  const int64_t wider = large_product_on_onednn(inputs.t()) ? K + 1 : 4 * K;  // depth: rows
  if (blocks.size() == 1 && N >= wider) {
    return out.copy_(product(inputs.t(), blocks[0].reshape({-1, N})).t());
  }
  int64_t row = 0;
  for (const Tensor& d : blocks) {
    const int64_t n = d.size(-1);
    Tensor rows = out.narrow(0, row, n);
    const Tensor block = product(d.reshape({-1, n}).t(), inputs, rows);
    if (!block.is_same(rows)) rows.copy_(block);
    row += n;
  }
  return out;
}

// MKL's packed matrix product, which torch's own MKL exports where the build has one: W^T is
// laid out once per sequence in the kernel's panel format, so each step's (B, H) x (H, G*H)
// reads it as is. torch.mm repacks the weight on every call, and needs W^T made contiguous
// first (a transposing copy of the whole weight per sequence). Weak, as vsTanh below: where the
// build does not export it, torch.mm runs.
extern "C" {
size_t cblas_sgemm_pack_get_size(int identifier, int m, int n, int k) __attribute__((weak));
void cblas_sgemm_pack(int layout, int identifier, int trans, int m, int n, int k, float alpha,
                      const float* src, int ld, float* dest) __attribute__((weak));
void cblas_sgemm_compute(int layout, int transa, int transb, int m, int n, int k, const float* a,
                         int lda, const float* b, int ldb, float beta, float* c, int ldc)
    __attribute__((weak));
}
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112, kPacked = 151, kBMatrix = 162;
constexpr int64_t kMinStepsToMklPack = 8;  // the packing costs about one step's product

bool mkl_pack_enabled() {
  static const bool enabled = cblas_sgemm_pack_get_size != nullptr &&
                              cblas_sgemm_pack != nullptr && cblas_sgemm_compute != nullptr && [] {
                                const char* flag = std::getenv("RNNLAB_NATIVE_MKL_PACK");
                                return flag == nullptr || std::string(flag) != "0";
                              }();
  return enabled;
}

// h_{t-1} W^T (B, G*H) for every step of one sequence: oneDNN's packed weight when fused.py made
// one; else the hand-written step product (step_product.h: float32, AVX-512); else
// MKL's packed W^T for float32 batches that keep every row each step (no lengths); else
// torch.mm into `scratch` with W^T made contiguous once.
//
// A loop that starts from the zero state (h0 all zeros: no state given, the usual case) skips
// its first step's product, whose result is 0. (torch's would be NaN where W_hh holds an inf or
// NaN; from the second step on, both are.)
class HiddenWeight {
 public:
  HiddenWeight(const Tensor& weight_hh, const Tensor& packed, const Tensor& h0, int64_t T,
               int64_t B, bool every_row)
      : weight_hh_(weight_hh), packed_(packed), zero_start_(!h0.any().item<bool>()) {
    if (packed.defined()) return;
    if (rnnlab::StepProduct::applies(weight_hh, B)) {
      step_.emplace(weight_hh, /*transposed=*/true);
      return;
    }
    const int64_t n = weight_hh.size(0), k = weight_hh.size(1);
    if (weight_hh.scalar_type() == at::kFloat && every_row && T >= kMinStepsToMklPack &&
        B > 0 && weight_hh.is_contiguous() && mkl_pack_enabled()) {
      const size_t bytes = cblas_sgemm_pack_get_size(kBMatrix, B, n, k);
      mkl_ = at::empty({static_cast<int64_t>(bytes / sizeof(float)) + 1}, weight_hh.options());
      cblas_sgemm_pack(kRowMajor, kBMatrix, kTrans, B, n, k, 1.0f,
                       weight_hh.const_data_ptr<float>(), k, mkl_.data_ptr<float>());
      m_ = B;
      return;
    }
    weight_t_ = weight_hh.t().contiguous();
  }

  // h_{t-1} W^T of step t
  Tensor product(int64_t t, const Tensor& h, Tensor& scratch) const {
    if (t == 0 && zero_start_) return scratch.zero_();
    if (h.size(0) == 0) return scratch;  // every sequence has ended
    if (packed_.defined()) return onednn_linear(h, packed_);
    if (step_ && h.stride(1) == 1 && scratch.is_contiguous()) {
      step_->multiply(h, scratch, Tensor());
      return scratch;
    }
    const int64_t n = weight_hh_.size(0), k = weight_hh_.size(1);
    if (mkl_.defined() && h.size(0) == m_ && h.stride(1) == 1 && h.stride(0) == k &&
        scratch.is_contiguous()) {
      cblas_sgemm_compute(kRowMajor, kNoTrans, kPacked, static_cast<int>(m_),
                          static_cast<int>(n), static_cast<int>(k), h.const_data_ptr<float>(),
                          static_cast<int>(k), mkl_.const_data_ptr<float>(),
                          static_cast<int>(n), 0.0f, scratch.data_ptr<float>(),
                          static_cast<int>(n));
      return scratch;
    }
    at::mm_out(scratch, h, weight_t_.defined() ? weight_t_ : weight_hh_.t());
    return scratch;
  }

 private:
  Tensor weight_hh_, packed_, weight_t_, mkl_;
  bool zero_start_;
  int64_t m_ = 0;
  std::optional<rnnlab::StepProduct> step_;
};

// d_pre_t W (B, H) for every step of one sequence's backward, added to a base: oneDNN's packed
// W^T when fused.py made one; else the hand-written step product (as HiddenWeight); else addmm.
class StateGradWeight {
 public:
  StateGradWeight(const Tensor& weight_hh, const Tensor& packed_t, int64_t B)
      : weight_hh_(weight_hh), packed_t_(packed_t) {
    if (!packed_t.defined() && rnnlab::StepProduct::applies(weight_hh, B)) {
      step_.emplace(weight_hh, /*transposed=*/false);
    }
  }

  // out = base + [d, tail] W, for the running rows; `tail` (may be undefined) holds the last
  // columns of the gate gradient where they live apart (the full GRU's d_hn)
  void add(Tensor& out, const Tensor& base, const Tensor& d, const Tensor& tail) const {
    const bool rows_contiguous = d.stride(1) == 1 && out.stride(1) == 1 &&
                                 base.stride(1) == 1 && (!tail.defined() || tail.stride(1) == 1);
    if (packed_t_.defined()) {
      at::add_out(out, base, onednn_linear(tail.defined() ? at::cat({d, tail}, 1) : d, packed_t_));
    } else if (step_ && rows_contiguous) {
      step_->multiply(d, out, base, tail);
    } else {
      at::addmm_out(out, base, d, weight_hh_.narrow(0, 0, d.size(1)));
      if (tail.defined()) out.addmm_(tail, weight_hh_.narrow(0, d.size(1), tail.size(1)));
    }
  }

 private:
  Tensor weight_hh_, packed_t_;
  std::optional<rnnlab::StepProduct> step_;
};


// MKL's vector tanh, which torch.tanh itself calls on the CPU: over a step's (B, H) block it
// runs several times faster than Sleef's tanh a vector at a time (an Elman RNN's forward spent
// a quarter of its time there). Weak: where the torch build does not export it, Sleef's runs.
extern "C" {
void vsTanh(int n, const float* a, float* y) __attribute__((weak));
void vdTanh(int n, const double* a, double* y) __attribute__((weak));
}

// p[0..n) = tanh(p[0..n)), in place.
template <typename T> void tanh_in_place(T* p, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    if (vsTanh != nullptr) return vsTanh(static_cast<int>(n), p, p);
  } else if constexpr (std::is_same_v<T, double>) {
    if (vdTanh != nullptr) return vdTanh(static_cast<int>(n), p, p);
  }
  columns<T>(n, [&](int64_t j, int64_t count) { load(p + j, count).tanh().store(p + j, count); });
}

// n_t for every step: rows n_t..B-1 have all ended (m = 0) at step t, so nothing is computed
// for them, only their state carried. The layers sort a batch with lengths longest first, which
// makes the running sequences a prefix and the work that of torch's packed kernel.
std::vector<int64_t> active_rows(const Tensor& mask, int64_t T, int64_t B) {
  std::vector<int64_t> rows(T, B);
  if (!mask.defined()) return rows;
  AT_DISPATCH_FLOATING_TYPES(mask.scalar_type(), "active_rows", [&] {
    const scalar_t* m = mask.const_data_ptr<scalar_t>();
    for (int64_t t = 0; t < T; ++t) {
      int64_t n = 0;
      for (int64_t b = 0; b < B; ++b) {
        if (m[t * B + b] != scalar_t(0)) n = b + 1;
      }
      rows[t] = n;
    }
  });
  return rows;
}

// Rows n..B-1 of a (B, H) step buffer: zero (cell outputs nobody computed).
inline void zero_rows(const Tensor& step, int64_t n) {
  if (n < step.size(0)) step.narrow(0, n, step.size(0) - n).zero_();
}

// Rows n..B-1 of `to` from `from` (gradients carried past the ends of the sequences).
inline void copy_rows(const Tensor& to, const Tensor& from, int64_t n) {
  if (n < to.size(0)) to.narrow(0, n, to.size(0) - n).copy_(from.narrow(0, n, to.size(0) - n));
}

// dh_{t-1} (B, H) into `dh_prev`: base + [d_pre_t, tail_t] W for the `active` running rows,
// whose rows of d_pre_t (and tail_t, where defined) are the only ones written (the rest are
// zeroed here); the ended rows carry dh_t. Without `wanted` (dh0, where h0 needs no gradient)
// only the zeroing: the step's product is skipped.
void previous_state_grad(Tensor& dh_prev, const Tensor& base, const Tensor& d_pre_t,
                         const Tensor& tail_t, const Tensor& dh, const StateGradWeight& weight,
                         int64_t active, bool wanted = true) {
  zero_rows(d_pre_t, active);
  if (tail_t.defined()) zero_rows(tail_t, active);
  if (!wanted) return;
  copy_rows(dh_prev, dh, active);
  if (active == 0) return;
  Tensor running = dh_prev.narrow(0, 0, active);
  weight.add(running, base.narrow(0, 0, active), d_pre_t.narrow(0, 0, active),
             tail_t.defined() ? tail_t.narrow(0, 0, active) : Tensor());
}

// Carried state past a sequence's end (m = 0) keeps h_{t-1}; the output there is 0.
template <typename T>
inline void carry_rows(const T* mask, int64_t t, int64_t B, int64_t H, const T* prev, T* cell,
                       T* carried, T* out) {
  for (int64_t b = 0; b < B; ++b) {
    const T m = mask_at(mask, t, B, b);
    const T* source = m != T(0) ? cell + b * H : prev + b * H;
    if (carried != nullptr) std::copy(source, source + H, carried + b * H);
    if (out != nullptr && m == T(0)) std::fill(out + b * H, out + (b + 1) * H, T(0));
  }
}

// ---------------------------------------------------------------------------------------------
// LSTM (optional peepholes): gates (T, B, 4H) pre-activations -> activated in place.

std::vector<Tensor> lstm_forward(const Tensor& x_proj, const Tensor& h0, const Tensor& c0,
                                 const Tensor& weight_hh, const std::optional<Tensor>& bias_opt,
                                 const std::optional<Tensor>& peep_opt,  // (3, H): ci, cf, co
                                 const std::optional<Tensor>& mask_opt,
                                 const std::optional<Tensor>& packed_opt) {
  const Tensor bias = defined_or(bias_opt), peep = defined_or(peep_opt),
               mask = defined_or(mask_opt), packed = defined_or(packed_opt);
  const int64_t T = x_proj.size(0), B = x_proj.size(1), H = h0.size(1);
  const Tensor x = x_proj.contiguous();
  Tensor gates = cached_like(x);  // x W_ih + b + h W_hh, activated in place
  Tensor h_new = cached_empty({T, B, H}, x_proj.options());
  Tensor c_new = cached_like(h_new), tanh_c = cached_like(h_new);
  Tensor h_all = mask.defined() ? cached_like(h_new) : h_new;
  Tensor c_all = mask.defined() ? cached_like(h_new) : c_new;
  const HiddenWeight hidden(weight_hh, packed, h0, T, B, !mask.defined());
  Tensor scratch = at::empty({B, 4 * H}, x_proj.options());
  const std::vector<int64_t> rows = active_rows(mask, T, B);
  AT_DISPATCH_FLOATING_TYPES(x_proj.scalar_type(), "lstm_forward", [&] {
    using V = Vec<scalar_t>;
    const scalar_t* pp = ptr_or_null<scalar_t>(peep);
    const scalar_t* mp = ptr_or_null<scalar_t>(mask);
    const scalar_t* bp = ptr_or_null<scalar_t>(bias);
    Tensor h = h0.contiguous(), c = c0.contiguous();
    for (int64_t t = 0; t < T; ++t) {
      const int64_t active = rows[t];
      Tensor scratch_t = scratch.narrow(0, 0, active);
      const Tensor hw_t = hidden.product(t, h.narrow(0, 0, active), scratch_t);
      const scalar_t* hw = hw_t.const_data_ptr<scalar_t>();
      scalar_t* g = gates[t].data_ptr<scalar_t>();
      const scalar_t* xt = x[t].const_data_ptr<scalar_t>();
      const scalar_t* cp = c.const_data_ptr<scalar_t>();
      scalar_t* cn = c_new[t].data_ptr<scalar_t>();
      scalar_t* tc = tanh_c[t].data_ptr<scalar_t>();
      scalar_t* hn = h_new[t].data_ptr<scalar_t>();
      for (int64_t b = 0; b < active; ++b) {
        scalar_t* gi = g + b * 4 * H;
        const scalar_t* xi = xt + b * 4 * H;
        const scalar_t* hi = hw + b * 4 * H;
        const scalar_t* cprev = cp + b * H;
        columns<scalar_t>(H, [&](int64_t j, int64_t n) {
          for (int64_t gate = 0; gate < 4; ++gate) {
            fetch_ahead(xi + gate * H + j);
            fetch_ahead<true>(gi + gate * H + j);
          }
          fetch_ahead<true>(cn + b * H + j);
          fetch_ahead<true>(tc + b * H + j);
          fetch_ahead<true>(hn + b * H + j);
          const auto pre = [&](int64_t k) {  // x W_ih + b + h W_hh of gate column k
            const V a = load(xi + k, n) + load(hi + k, n);
            return bp != nullptr ? a + load(bp + k, n) : a;
          };
          V ai = pre(j), af = pre(H + j), ao = pre(3 * H + j);
          const V c_prev = load(cprev + j, n);
          if (pp != nullptr) {  // i, f peek at c_{t-1}
            ai = ai + load(pp + j, n) * c_prev;
            af = af + load(pp + H + j, n) * c_prev;
          }
          const V i = fast_sigmoid(ai), f = fast_sigmoid(af);
          const V gg = fast_tanh(pre(2 * H + j));
          const V cc = f * c_prev + i * gg;  // c = f*c_{t-1} + i*g
          if (pp != nullptr) ao = ao + load(pp + 2 * H + j, n) * cc;  // o peeks at c_t
          const V o = fast_sigmoid(ao), tcc = fast_tanh(cc);
          i.store(gi + j, n); f.store(gi + H + j, n); gg.store(gi + 2 * H + j, n);
          o.store(gi + 3 * H + j, n);
          cc.store(cn + b * H + j, n); tcc.store(tc + b * H + j, n);
          (o * tcc).store(hn + b * H + j, n);  // h = o*tanh(c)
        });
      }
      if (mask.defined()) {
        for (const Tensor& step : {gates[t], h_new[t], c_new[t], tanh_c[t]}) zero_rows(step, active);
        carry_rows<scalar_t>(mp, t, B, H, h.const_data_ptr<scalar_t>(), hn,
                             h_all[t].data_ptr<scalar_t>(), nullptr);
        carry_rows<scalar_t>(mp, t, B, H, cp, cn, c_all[t].data_ptr<scalar_t>(), nullptr);
      }
      h = h_all[t];
      c = c_all[t];
    }
  });
  Tensor out = mask.defined() ? h_new.mul_(mask) : h_new;
  return {out, gates, tanh_c, c_new, c_all, h_all};
}

// Returns d_gates (= dL/dx_proj), dh0 (undefined without want_dh0), dc0, d_peep (B, 3, H:
// summed over B by the caller), and with `sum_bias` the sum of d_gates over all rows (4H): the
// bias gradient, added up where the loop has it in registers (torch's sum over the (T, B) rows
// read all 33 MB of d_gates again at config (c): 2.8 ms of a 150 ms step).
std::vector<Tensor> lstm_backward(const Tensor& d_out, const Tensor& d_hT, const Tensor& d_cT,
                                  const Tensor& gates, const Tensor& tanh_c,
                                  const std::optional<Tensor>& c_new_opt, const Tensor& c_all, const Tensor& c0, const Tensor& weight_hh,
                                  const std::optional<Tensor>& peep_opt,
                                  const std::optional<Tensor>& mask_opt,
                                  const std::optional<Tensor>& packed_t_opt, bool want_dh0,
                                  bool sum_bias) {
  const Tensor peep = defined_or(peep_opt), mask = defined_or(mask_opt),
               packed_t = defined_or(packed_t_opt);
  const Tensor c_new = defined_or(c_new_opt);  // c_t: only the peepholes read it
  const int64_t T = gates.size(0), B = gates.size(1), H = c0.size(1);
  Tensor d_gates = cached_like(gates);
  Tensor d_peep = peep.defined() ? at::zeros({B, 3, H}, gates.options()) : Tensor();
  Tensor sums = sum_bias ? at::zeros({4 * H}, gates.options()) : Tensor();
  Tensor dh = d_hT.contiguous().clone(), dc = d_cT.contiguous().clone();
  Tensor dh_prev = at::empty_like(dh), dc_prev = at::empty_like(dc);
  const Tensor d_out_c = d_out.contiguous();
  const StateGradWeight state_grad(weight_hh, packed_t, B);
  const std::vector<int64_t> rows = active_rows(mask, T, B);
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_backward", [&] {
    using V = Vec<scalar_t>;
    const scalar_t* pp = ptr_or_null<scalar_t>(peep);
    const scalar_t* mp = ptr_or_null<scalar_t>(mask);
    scalar_t* dpp = peep.defined() ? d_peep.data_ptr<scalar_t>() : nullptr;
    scalar_t* sp = sum_bias ? sums.data_ptr<scalar_t>() : nullptr;
    const V one(scalar_t(1));
    for (int64_t t = T - 1; t >= 0; --t) {
      const scalar_t* g = gates[t].const_data_ptr<scalar_t>();
      const scalar_t* tc = tanh_c[t].const_data_ptr<scalar_t>();
      const scalar_t* cn = c_new.defined() ? c_new[t].const_data_ptr<scalar_t>() : nullptr;
      const scalar_t* cp = (t == 0 ? c0 : c_all[t - 1]).const_data_ptr<scalar_t>();
      const scalar_t* dout = d_out_c[t].const_data_ptr<scalar_t>();
      scalar_t* dg = d_gates[t].data_ptr<scalar_t>();
      scalar_t* dhp = dh.data_ptr<scalar_t>();
      scalar_t* dcp = dc.data_ptr<scalar_t>();
      scalar_t* dcprev = dc_prev.data_ptr<scalar_t>();
      const int64_t active = rows[t];
      for (int64_t b = 0; b < active; ++b) {
        const scalar_t m = mask_at(mp, t, B, b);
        const V mv(m), om(scalar_t(1) - m);
        const scalar_t* gb = g + b * 4 * H;
        scalar_t* db = dg + b * 4 * H;
        columns<scalar_t>(H, [&](int64_t j, int64_t n) {
          const int64_t k = b * H + j;
          for (int64_t gate = 0; gate < 4; ++gate) {
            fetch_ahead(gb + gate * H + j);
            fetch_ahead<true>(db + gate * H + j);
          }
          fetch_ahead(tc + k);
          fetch_ahead(cp + k);
          fetch_ahead(dout + k);
          if (cn != nullptr) fetch_ahead(cn + k);
          const V i = load(gb + j, n), f = load(gb + H + j, n), gg = load(gb + 2 * H + j, n),
                  o = load(gb + 3 * H + j, n);
          const V tcc = load(tc + k, n), c_prev = load(cp + k, n);
          const V dh_carried = load(dhp + k, n), dc_carried = load(dcp + k, n);
          const V dh_new = (dh_carried + load(dout + k, n)) * mv;
          V dc_new = dc_carried * mv;
          // h = o*tanh(c)
          const V d_o = dh_new * tcc * o * (one - o);
          dc_new = dc_new + dh_new * o * (one - tcc * tcc);
          if (pp != nullptr) dc_new = dc_new + d_o * load(pp + 2 * H + j, n);
          // c = f*c_{t-1} + i*g
          const V d_i = dc_new * gg * i * (one - i);
          const V d_f = dc_new * c_prev * f * (one - f);
          const V d_g = dc_new * i * (one - gg * gg);
          V dcp_new = dc_new * f;
          if (pp != nullptr) {
            dcp_new = dcp_new + d_i * load(pp + j, n) + d_f * load(pp + H + j, n);
            scalar_t* dpb = dpp + b * 3 * H;
            (load(dpb + j, n) + d_i * c_prev).store(dpb + j, n);
            (load(dpb + H + j, n) + d_f * c_prev).store(dpb + H + j, n);
            (load(dpb + 2 * H + j, n) + d_o * load(cn + k, n)).store(dpb + 2 * H + j, n);
          }
          d_i.store(db + j, n); d_f.store(db + H + j, n); d_g.store(db + 2 * H + j, n);
          d_o.store(db + 3 * H + j, n);
          if (sp != nullptr) {
            (load(sp + j, n) + d_i).store(sp + j, n);
            (load(sp + H + j, n) + d_f).store(sp + H + j, n);
            (load(sp + 2 * H + j, n) + d_g).store(sp + 2 * H + j, n);
            (load(sp + 3 * H + j, n) + d_o).store(sp + 3 * H + j, n);
          }
          (dcp_new + dc_carried * om).store(dcprev + k, n);
          (dh_carried * om).store(dhp + k, n);  // the carried (1-m)*h_{t-1} part
        });
      }
      // dh_{t-1} = (1-m) dh_t + d_gates_t W_hh
      previous_state_grad(dh_prev, dh, d_gates[t], Tensor(), dh, state_grad, active,
                          t > 0 || want_dh0);
      copy_rows(dc_prev, dc, active);
      std::swap(dh, dh_prev);
      std::swap(dc, dc_prev);
    }
  });
  return {d_gates, want_dh0 ? dh : Tensor(), dc, d_peep, sums};
}

// ---------------------------------------------------------------------------------------------
// GRU. Full (torch's): r, z = σ(x + W h + b); n = tanh(x_n + r*(W_n h + b_n)); h = n + z(h - n).
// Minimal: z, n = σ, tanh(x + W h + b); h = n + z(h - n).
// x here is x_proj (+ b_ih where bias_ih is given: the full GRU adds it as it reads x_proj,
// since b_in cannot join b_hn inside r's product; the minimal one gets b_ih + b_hh as its bias).

std::vector<Tensor> gru_forward(const Tensor& x_proj, const Tensor& h0, const Tensor& weight_hh,
                                const std::optional<Tensor>& bias_opt, bool full,
                                const std::optional<Tensor>& mask_opt,
                                const std::optional<Tensor>& packed_opt,
                                const std::optional<Tensor>& bias_ih_opt) {
  const Tensor bias = defined_or(bias_opt), mask = defined_or(mask_opt),
               packed = defined_or(packed_opt), bias_ih = defined_or(bias_ih_opt);
  TORCH_CHECK(full || !bias_ih.defined(), "gru_forward: the minimal GRU takes b_ih in its bias");
  const int64_t T = x_proj.size(0), B = x_proj.size(1), H = h0.size(1);
  const Tensor x = x_proj.contiguous();
  Tensor gates, h_proj;
  if (full) {
    gates = cached_like(x);
    h_proj = cached_empty({T, B, H}, x.options());  // W_hn h + b_hn: all the backward reads
  } else {
    gates = cached_sum(x, bias);
  }
  Tensor h_new = cached_empty({T, B, H}, x.options());
  Tensor h_all = mask.defined() ? cached_like(h_new) : h_new;
  const HiddenWeight hidden(weight_hh, packed, h0, T, B, !mask.defined());
  const int64_t G = full ? 3 : 2;
  Tensor scratch = at::empty({B, G * H}, x.options());
  const std::vector<int64_t> rows = active_rows(mask, T, B);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gru_forward", [&] {
    using V = Vec<scalar_t>;
    const scalar_t* mp = ptr_or_null<scalar_t>(mask);
    const scalar_t* bp = full ? ptr_or_null<scalar_t>(bias) : nullptr;
    const scalar_t* bip = ptr_or_null<scalar_t>(bias_ih);
    Tensor h = h0.contiguous();
    for (int64_t t = 0; t < T; ++t) {
      const int64_t active = rows[t];
      Tensor scratch_t = scratch.narrow(0, 0, active);
      const Tensor hw_t = hidden.product(t, h.narrow(0, 0, active), scratch_t);
      const scalar_t* hw = hw_t.const_data_ptr<scalar_t>();
      const scalar_t* xp = x[t].const_data_ptr<scalar_t>();
      scalar_t* hpn = full ? h_proj[t].data_ptr<scalar_t>() : nullptr;
      const scalar_t* hprev = h.const_data_ptr<scalar_t>();
      scalar_t* g = gates[t].data_ptr<scalar_t>();
      scalar_t* hn = h_new[t].data_ptr<scalar_t>();
      for (int64_t b = 0; b < active; ++b) {
        scalar_t* gb = g + b * G * H;
        const scalar_t* xb = xp + b * G * H;
        const scalar_t* wb = hw + b * G * H;
        scalar_t* hb = full ? hpn + b * H : nullptr;
        columns<scalar_t>(H, [&](int64_t j, int64_t n) {
          for (int64_t gate = 0; gate < G; ++gate) {
            fetch_ahead(xb + gate * H + j);
            fetch_ahead<true>(gb + gate * H + j);
          }
          if (full) fetch_ahead<true>(hb + j);
          const auto input = [&](int64_t k) {  // x W_ih (+ b_ih) of gate column k
            const V a = load(xb + k, n);
            return bip != nullptr ? a + load(bip + k, n) : a;
          };
          V z, nn;
          if (full) {  // W_hh h_{t-1} + b_hh; its n part is kept for the backward
            V hp_r = load(wb + j, n), hp_z = load(wb + H + j, n), hp_n = load(wb + 2 * H + j, n);
            if (bp != nullptr) {
              hp_r = hp_r + load(bp + j, n);
              hp_z = hp_z + load(bp + H + j, n);
              hp_n = hp_n + load(bp + 2 * H + j, n);
            }
            hp_n.store(hb + j, n);
            const V r = sigmoid(input(j) + hp_r);
            z = sigmoid(input(H + j) + hp_z);
            nn = input(2 * H + j) + r * hp_n;  // n's pre-activation; tanh below
            r.store(gb + j, n);
          } else {  // gates hold x W_ih + b_ih + b_hh
            z = sigmoid(load(gb + j, n) + load(wb + j, n));
            nn = load(gb + H + j, n) + load(wb + H + j, n);
          }
          z.store(gb + (G - 2) * H + j, n);
          nn.store(gb + (G - 1) * H + j, n);
        });
        scalar_t* nb = gb + (G - 1) * H;
        tanh_in_place(nb, H);  // n = tanh(...), the row's H values at once
        const scalar_t* zb = gb + (G - 2) * H;
        columns<scalar_t>(H, [&](int64_t j, int64_t n) {
          const V nn = load(nb + j, n), z = load(zb + j, n), hp = load(hprev + b * H + j, n);
          (nn + z * (hp - nn)).store(hn + b * H + j, n);  // (1-z)*n + z*h_{t-1}
        });
      }
      if (mask.defined()) {
        zero_rows(h_new[t], active);
        carry_rows<scalar_t>(mp, t, B, H, hprev, hn, h_all[t].data_ptr<scalar_t>(), nullptr);
      }
      h = h_all[t];
    }
  });
  Tensor out = mask.defined() ? h_new.mul_(mask) : h_new;
  return {out, gates, full ? h_proj : Tensor(), h_all};
}

// Returns d_x (= dL/dx_proj), d_hn and dh0 (undefined without want_dh0). dL/d(W h + b) is d_x
// for the minimal GRU (d_hn undefined); for the full GRU it is d_x in the r and z blocks and d_hn
// (T, B, H) = dL/d(W_n h + b_n) in the n block, which is kept apart rather than in a second
// (T, B, 3H) copy whose r and z blocks would repeat d_x's. With `sum_bias`, also the sums over
// all rows of d_x and d_hn, (G*H [+ H]): the bias gradients, added up where the loop has them
// in registers (torch's sums over the (T, B) rows took two more passes over 7 MB at (b)).
std::vector<Tensor> gru_backward(const Tensor& d_out, const Tensor& d_hT, const Tensor& gates,
                                 const std::optional<Tensor>& h_proj_opt, const Tensor& h_all,
                                 const Tensor& h0, const Tensor& weight_hh, bool full,
                                 const std::optional<Tensor>& mask_opt,
                                 const std::optional<Tensor>& packed_t_opt, bool want_dh0,
                                 bool sum_bias) {
  const Tensor h_proj = defined_or(h_proj_opt), mask = defined_or(mask_opt),
               packed_t = defined_or(packed_t_opt);
  const int64_t T = gates.size(0), B = gates.size(1), H = h0.size(1);
  const int64_t G = full ? 3 : 2;
  Tensor d_x = cached_like(gates);
  Tensor d_hn = full ? cached_empty({T, B, H}, gates.options()) : Tensor();
  Tensor sums = sum_bias ? at::zeros({(full ? 4 : 2) * H}, gates.options()) : Tensor();
  Tensor dh = d_hT.contiguous().clone();
  Tensor dh_prev = at::empty_like(dh), base = at::empty_like(dh);
  const Tensor d_out_c = d_out.contiguous();
  const StateGradWeight state_grad(weight_hh, packed_t, B);
  const std::vector<int64_t> rows = active_rows(mask, T, B);
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "gru_backward", [&] {
    using V = Vec<scalar_t>;
    const scalar_t* mp = ptr_or_null<scalar_t>(mask);
    scalar_t* sp = sum_bias ? sums.data_ptr<scalar_t>() : nullptr;
    const auto add_to_sum = [&](int64_t at, const V& d, int64_t n) {
      if (sp != nullptr) (load(sp + at, n) + d).store(sp + at, n);
    };
    const V one(scalar_t(1));
    for (int64_t t = T - 1; t >= 0; --t) {
      const scalar_t* g = gates[t].const_data_ptr<scalar_t>();
      const scalar_t* hpp = full ? h_proj[t].const_data_ptr<scalar_t>() : nullptr;
      const scalar_t* hprev = (t == 0 ? h0 : h_all[t - 1]).const_data_ptr<scalar_t>();
      const scalar_t* dout = d_out_c[t].const_data_ptr<scalar_t>();
      scalar_t* dx = d_x[t].data_ptr<scalar_t>();
      scalar_t* dhn = full ? d_hn[t].data_ptr<scalar_t>() : nullptr;
      scalar_t* dhp = dh.data_ptr<scalar_t>();
      scalar_t* bp = base.data_ptr<scalar_t>();
      const int64_t active = rows[t];
      for (int64_t b = 0; b < active; ++b) {
        const scalar_t m = mask_at(mp, t, B, b);
        const V mv(m), om(scalar_t(1) - m);
        const scalar_t* gb = g + b * G * H;
        scalar_t* dxb = dx + b * G * H;
        columns<scalar_t>(H, [&](int64_t j, int64_t n) {
          const int64_t k = b * H + j;
          for (int64_t gate = 0; gate < G; ++gate) {
            fetch_ahead(gb + gate * H + j);
            fetch_ahead<true>(dxb + gate * H + j);
          }
          fetch_ahead(dout + k);
          fetch_ahead(hprev + k);
          if (full) {
            fetch_ahead(hpp + k);
            fetch_ahead<true>(dhn + k);
          }
          const V z = load(gb + (G - 2) * H + j, n), nn = load(gb + (G - 1) * H + j, n);
          const V dh_carried = load(dhp + k, n);
          const V dh_new = (dh_carried + load(dout + k, n)) * mv;
          // h = (1-z)*n + z*h_{t-1}
          const V d_n = (dh_new - dh_new * z) * (one - nn * nn);
          const V d_z = (load(hprev + k, n) - nn) * dh_new * z * (one - z);
          if (full) {  // n_pre = x_n + r*(W_n h + b_n)
            const V r = load(gb + j, n);
            const V d_r = d_n * load(hpp + k, n) * r * (one - r);  // hp_n, (T, B, H)
            const V d_hn_k = d_n * r;
            d_r.store(dxb + j, n);
            d_z.store(dxb + H + j, n);
            d_n.store(dxb + 2 * H + j, n);
            d_hn_k.store(dhn + k, n);
            add_to_sum(j, d_r, n);
            add_to_sum(H + j, d_z, n);
            add_to_sum(2 * H + j, d_n, n);
            add_to_sum(3 * H + j, d_hn_k, n);
          } else {
            d_z.store(dxb + j, n);
            d_n.store(dxb + H + j, n);
            add_to_sum(j, d_z, n);
            add_to_sum(H + j, d_n, n);
          }
          // dh_{t-1} = dh_new*z + (1-m) dh_t + d_pre W (added after the row loop)
          (dh_new * z + dh_carried * om).store(bp + k, n);
        });
      }
      // the full GRU's recurrent product reads d_x's r, z blocks and d_hn: [d_r, d_z, d_hn] W;
      // previous_state_grad zeroes the ended rows of what it reads, here those of x_n's block
      const Tensor d_x_t = d_x[t];
      if (full) zero_rows(d_x_t.narrow(1, 2 * H, H), active);
      previous_state_grad(dh_prev, base, full ? d_x_t.narrow(1, 0, 2 * H) : d_x_t,
                          full ? d_hn[t] : Tensor(), dh, state_grad, active, t > 0 || want_dh0);
      std::swap(dh, dh_prev);
    }
  });
  return {d_x, d_hn, want_dh0 ? dh : Tensor(), sums};
}

// ---------------------------------------------------------------------------------------------
// Elman RNN: h = act(x + W h + b), act tanh or relu.

std::vector<Tensor> rnn_forward(const Tensor& x_proj, const Tensor& h0, const Tensor& weight_hh,
                                const std::optional<Tensor>& bias_opt, bool relu,
                                const std::optional<Tensor>& mask_opt,
                                const std::optional<Tensor>& packed_opt) {
  const Tensor bias = defined_or(bias_opt), mask = defined_or(mask_opt),
               packed = defined_or(packed_opt);
  const int64_t T = x_proj.size(0), B = x_proj.size(1), H = h0.size(1);
  const Tensor x = x_proj.contiguous();
  Tensor h_new = cached_like(x);
  Tensor h_all = mask.defined() ? cached_like(h_new) : h_new;
  const HiddenWeight hidden(weight_hh, packed, h0, T, B, !mask.defined());
  Tensor scratch = at::empty({B, H}, x_proj.options());
  const std::vector<int64_t> rows = active_rows(mask, T, B);
  AT_DISPATCH_FLOATING_TYPES(x_proj.scalar_type(), "rnn_forward", [&] {
    using V = Vec<scalar_t>;
    const scalar_t* mp = ptr_or_null<scalar_t>(mask);
    const scalar_t* bp = ptr_or_null<scalar_t>(bias);
    Tensor h = h0.contiguous();
    for (int64_t t = 0; t < T; ++t) {
      const int64_t active = rows[t];
      Tensor scratch_t = scratch.narrow(0, 0, active);
      const Tensor hw_t = hidden.product(t, h.narrow(0, 0, active), scratch_t);
      const scalar_t* hw = hw_t.const_data_ptr<scalar_t>();
      const scalar_t* xp = x[t].const_data_ptr<scalar_t>();
      scalar_t* p = h_new[t].data_ptr<scalar_t>();
      for (int64_t b = 0; b < active; ++b) {
        const int64_t row = b * H;
        columns<scalar_t>(H, [&](int64_t j, int64_t n) {  // x W_ih + b + h W_hh
          fetch_ahead(xp + row + j);
          fetch_ahead<true>(p + row + j);
          V a = load(xp + row + j, n) + load(hw + row + j, n);
          if (bp != nullptr) a = a + load(bp + j, n);
          (relu ? at::vec::clamp_min(a, V(scalar_t(0))) : a).store(p + row + j, n);
        });
      }
      if (!relu) tanh_in_place(p, active * H);
      if (mask.defined()) {
        zero_rows(h_new[t], active);
        carry_rows<scalar_t>(mp, t, B, H, h.const_data_ptr<scalar_t>(), p,
                             h_all[t].data_ptr<scalar_t>(), nullptr);
      }
      h = h_all[t];
    }
  });
  Tensor out = mask.defined() ? h_new * mask : h_new;  // h_new stays: act' reads it
  return {out, h_new, h_all};
}

// Returns d_pre (= dL/dx_proj) and dh0 (undefined without want_dh0).
std::vector<Tensor> rnn_backward(const Tensor& d_out, const Tensor& d_hT, const Tensor& h_new,
                                 const Tensor& weight_hh, bool relu,
                                 const std::optional<Tensor>& mask_opt,
                                 const std::optional<Tensor>& packed_t_opt, bool want_dh0) {
  const Tensor mask = defined_or(mask_opt), packed_t = defined_or(packed_t_opt);
  const int64_t T = h_new.size(0), B = h_new.size(1), H = h_new.size(2);
  Tensor d_pre = cached_like(h_new);
  Tensor dh = d_hT.contiguous().clone();
  Tensor dh_prev = at::empty_like(dh);
  const Tensor d_out_c = d_out.contiguous();
  const StateGradWeight state_grad(weight_hh, packed_t, B);
  const std::vector<int64_t> rows = active_rows(mask, T, B);
  AT_DISPATCH_FLOATING_TYPES(h_new.scalar_type(), "rnn_backward", [&] {
    using V = Vec<scalar_t>;
    const scalar_t* mp = ptr_or_null<scalar_t>(mask);
    const V one(scalar_t(1)), zero(scalar_t(0));
    for (int64_t t = T - 1; t >= 0; --t) {
      const scalar_t* hn = h_new[t].const_data_ptr<scalar_t>();
      const scalar_t* dout = d_out_c[t].const_data_ptr<scalar_t>();
      scalar_t* dp = d_pre[t].data_ptr<scalar_t>();
      scalar_t* dhp = dh.data_ptr<scalar_t>();
      const int64_t active = rows[t];
      for (int64_t b = 0; b < active; ++b) {
        const scalar_t m = mask_at(mp, t, B, b);
        const V mv(m), om(scalar_t(1) - m);
        columns<scalar_t>(H, [&](int64_t j, int64_t n) {
          const int64_t k = b * H + j;
          fetch_ahead(hn + k);
          fetch_ahead(dout + k);
          fetch_ahead<true>(dp + k);
          const V h = load(hn + k, n), dh_carried = load(dhp + k, n);
          const V dh_new = (dh_carried + load(dout + k, n)) * mv;
          // relu' = [h > 0], tanh' = 1 - h²
          const V d = relu ? V::blendv(zero, dh_new, h > zero) : dh_new * (one - h * h);
          d.store(dp + k, n);
          (dh_carried * om).store(dhp + k, n);
        });
      }
      previous_state_grad(dh_prev, dh, d_pre[t], Tensor(), dh, state_grad, active,
                          t > 0 || want_dh0);
      std::swap(dh, dh_prev);
    }
  });
  return {d_pre, want_dh0 ? dh : Tensor()};
}

}  // namespace

namespace rnnlab {  // generate.cpp: sampling from a recurrent LM, the token loop in C++
std::vector<at::Tensor> generate(const std::string& cell_name, const at::Tensor& logits_in,
                                 const at::Tensor& table,
                                 const std::vector<std::vector<at::Tensor>>& layer_parts,
                                 const std::vector<at::Tensor>& h_states,
                                 const std::vector<at::Tensor>& c_states,
                                 const std::vector<at::Tensor>& head,
                                 const at::Tensor& uniforms, int64_t count, double temperature,
                                 bool greedy, const at::Tensor& banned_in, bool step_last);
}  // namespace rnnlab

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  // Every loop takes milliseconds and touches only tensors: release the GIL while it runs, as
  // torch's own ops do, so that a server's event loop (or any other Python thread) runs
  // meanwhile instead of waiting for a whole batch.
  using release_gil = py::call_guard<py::gil_scoped_release>;
  m.def("lstm_forward", &lstm_forward, release_gil());
  m.def("lstm_backward", &lstm_backward, release_gil());
  m.def("gru_forward", &gru_forward, release_gil());
  m.def("project", &project, release_gil());
  m.def("set_onednn_products", [](bool on) { onednn_products = on; });
  m.def("onednn_products", [] { return onednn_products; });
  m.def("set_kernel_weight_grads", [](bool on) { kernel_weight_grads = on; });
  m.def("kernel_weight_grads", [] { return kernel_weight_grads; });
  m.def("set_kernel_min_width", [](int64_t width) { kernel_min_width = width; });
  m.def("kernel_min_width", [] { return kernel_min_width; });
  m.def("set_onednn_min_depth", [](int64_t depth) { onednn_min_depth = depth; });
  m.def("onednn_min_depth", [] { return onednn_min_depth; });
  m.def("weight_grad", &weight_grad, release_gil());
  m.def("gru_backward", &gru_backward, release_gil());
  m.def("rnn_forward", &rnn_forward, release_gil());
  m.def("rnn_backward", &rnn_backward, release_gil());
  m.def("generate", &rnnlab::generate, release_gil());
  // The step product alone (tests, benchmarks/step_product.py): [a, tail] @ weight^T
  // (transposed) or [a, tail] @ weight, plus base; twice when `calls` is 2, so the second call
  // walks the other way.
  m.def("step_product_applies", &rnnlab::StepProduct::applies);
  m.def("step_product", [](const Tensor& a, const Tensor& weight, bool transposed,
                           const std::optional<Tensor>& base, int64_t calls,
                           const std::optional<Tensor>& tail) {
    const rnnlab::StepProduct product(weight, transposed);
    Tensor c = at::empty({a.size(0), transposed ? weight.size(0) : weight.size(1)}, a.options());
    for (int64_t i = 0; i < calls; ++i) product.multiply(a, c, defined_or(base), defined_or(tail));
    return c;
  }, py::arg("a"), py::arg("weight"), py::arg("transposed"), py::arg("base"), py::arg("calls"),
     py::arg("tail") = py::none(), release_gil());
  // The large products' kernel alone (tests, benchmarks/large_products.py): a @ b, into `out`
  m.def("kernel_product", [](const Tensor& a, const Tensor& b, const std::optional<Tensor>& out) {
    return out.has_value() ? kernel_product(a, b, out) : kernel_product(a, b, std::nullopt).clone();
  }, py::arg("a"), py::arg("b"), py::arg("out") = py::none(), release_gil());
  m.def("cached_bytes", [] { return rnnlab::BlockCache::instance().free_bytes(); });
  m.def("empty_cache", [] { rnnlab::BlockCache::instance().empty(); });
}
