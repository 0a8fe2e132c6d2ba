// Sampling from a recurrent language model with the token loop in C++ (built with
// recurrences.cpp by native.py; driven by rnnlab/tasks/lm/compiled_sampling.py).
//
// Why: one token of a small LM is a few matrix-vector products, yet stepped from Python it also
// pays some 30 tensor operations (lookup, per-layer products and gate activations, decoder,
// temperature, softmax, cumulative sum, draw), each a dispatch and an allocation: for a 2x256
// char LSTM that overhead is larger than the arithmetic. Here a token costs one product per
// layer (input and hidden weights side by side where the cell only sums them), one fused pass
// over the gates, the decoder's product, and a scalar softmax and draw over the vocabulary.
//
// The equations are those of cells.py (LSTM with optional peepholes, full and minimal GRU,
// tanh/ReLU RNN); the draw inverts the cumulative distribution as decoding/sampling.py's draw.

#include <torch/extension.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "vectors.h"

namespace rnnlab {
namespace {

using at::Tensor;

enum class Cell { kLstm, kGru, kGruMinimal, kRnnTanh, kRnnRelu };

Cell parse_cell(const std::string& name) {
  if (name == "lstm") return Cell::kLstm;
  if (name == "gru") return Cell::kGru;
  if (name == "gru_minimal") return Cell::kGruMinimal;
  if (name == "rnn_tanh") return Cell::kRnnTanh;
  if (name == "rnn_relu") return Cell::kRnnRelu;
  TORCH_CHECK(false, "unknown cell kind '", name, "'");
}

// G: the blocks of H pre-activations a step computes (LSTM i, f, g, o; GRU r, z, n; ...).
int64_t gate_blocks(Cell cell) {
  switch (cell) {
    case Cell::kLstm: return 4;
    case Cell::kGru: return 3;
    case Cell::kGruMinimal: return 2;
    default: return 1;
  }
}

bool given(const Tensor& x) { return x.defined() && x.numel() > 0; }

#if defined(CPU_CAPABILITY_AVX2) || defined(CPU_CAPABILITY_AVX512)
constexpr bool kOwnMatvec = true;
#else
constexpr bool kOwnMatvec = false;
#endif

// y (N) = W x + b for a row-major W (N, K), four rows at a time. Why hand-written: a token of a
// small LM is bound by reading its weights, and on this project's AMD EPYC torch.mv (MKL's
// gemv) reads them slowly: 1024x256 in 39.7 us against 24.8 us here (1.60x), 1024x512 1.45x,
// 2048x512 1.68x, 65x256 2.1x (float32, one thread); on an Intel Xeon (AVX-512 build), against
// MKL there, whole samples ran 1.03-1.06x faster with it. Only in AVX2 and AVX-512 builds;
// elsewhere torch.mv.
template <typename T>
void matvec(T* y, const T* w, const T* x, const T* bias, int64_t N, int64_t K) {
  using V = Vec<T>;
  T lanes[V::size()];
  auto sum = [&](const V& acc) {
    acc.store(lanes);
    T total = T(0);
    for (int64_t l = 0; l < V::size(); ++l) total += lanes[l];
    return total;
  };
  int64_t i = 0;
  for (; i + 4 <= N; i += 4) {
    const T *r0 = w + i * K, *r1 = r0 + K, *r2 = r1 + K, *r3 = r2 + K;
    V a0(T(0)), a1(T(0)), a2(T(0)), a3(T(0));
    columns<T>(K, [&](int64_t k, int64_t n) {
      const V xk = load(x + k, n);
      a0 = at::vec::fmadd(load(r0 + k, n), xk, a0);
      a1 = at::vec::fmadd(load(r1 + k, n), xk, a1);
      a2 = at::vec::fmadd(load(r2 + k, n), xk, a2);
      a3 = at::vec::fmadd(load(r3 + k, n), xk, a3);
    });
    const V* rows[4] = {&a0, &a1, &a2, &a3};
    for (int64_t j = 0; j < 4; ++j) y[i + j] = sum(*rows[j]) + (bias ? bias[i + j] : T(0));
  }
  for (; i < N; ++i) {
    V a(T(0));
    columns<T>(K, [&](int64_t k, int64_t n) {
      a = at::vec::fmadd(load(w + i * K + k, n), load(x + k, n), a);
    });
    y[i] = sum(a) + (bias ? bias[i] : T(0));
  }
}

// out (B, N) = x (B, K) W^T + b: a matrix-vector product for one row, else a matrix product.
void linear_out(Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (x.size(0) == 1 && kOwnMatvec && weight.is_contiguous() && x.is_contiguous() &&
      out.is_contiguous() && (!given(bias) || bias.is_contiguous())) {
    AT_DISPATCH_FLOATING_TYPES(weight.scalar_type(), "matvec", [&] {
      matvec<scalar_t>(out.data_ptr<scalar_t>(), weight.const_data_ptr<scalar_t>(),
                       x.const_data_ptr<scalar_t>(),
                       given(bias) ? bias.const_data_ptr<scalar_t>() : nullptr, weight.size(0),
                       weight.size(1));
    });
  } else if (x.size(0) == 1) {
    Tensor row = out.select(0, 0);
    if (given(bias)) {
      at::addmv_out(row, bias, weight, x.select(0, 0));
    } else {
      at::mv_out(row, weight, x.select(0, 0));
    }
  } else if (given(bias)) {
    at::addmm_out(out, bias, x, weight.t());
  } else {
    at::mm_out(out, x, weight.t());
  }
}

// One layer's weights as compiled_sampling.py hands them over (empty tensors where absent).
struct Layer {
  Tensor input_weight;   // (G*H, I), or (G*H, I+H) = [W_ih | W_hh] when `joint`; empty: layer 0
  Tensor input_bias;     // b_ih, or b_ih + b_hh when `joint`
  Tensor hidden_weight;  // (G*H, H); empty when `joint`
  Tensor hidden_bias;
  Tensor peepholes;      // (3, H): ci, cf, co, or empty
  bool joint() const { return !given(hidden_weight); }
};

std::vector<Layer> read_layers(const std::vector<std::vector<Tensor>>& parts) {
  std::vector<Layer> layers;
  for (const auto& p : parts) {
    TORCH_CHECK(p.size() == 5, "each layer needs 5 tensors, got ", p.size());
    layers.push_back({p[0].contiguous(), p[1], p[2].contiguous(), p[3], p[4].contiguous()});
  }
  return layers;
}

// The gate pass of one layer for B rows: pre_x (B, G*H) holds W_ih x + b_ih (the whole
// pre-activation when pre_h is null), pre_h (B, G*H) W_hh h_{t-1} + b_hh. Writes h (and c) in
// place: column j of a row reads its own h_{t-1}/c_{t-1} before writing them.
template <typename T>
void cell_pass(Cell cell, int64_t B, int64_t H, const T* pre_x, const T* pre_h, const T* peep,
               T* h, T* c) {
  using V = Vec<T>;
  const int64_t G = gate_blocks(cell);
  for (int64_t b = 0; b < B; ++b) {
    const T* x = pre_x + b * G * H;
    const T* w = pre_h == nullptr ? nullptr : pre_h + b * G * H;
    T* hb = h + b * H;
    // the pre-activation of gate k at columns j..j+n (both products summed)
    auto pre = [&](int64_t k, int64_t j, int64_t n) {
      V a = load(x + k * H + j, n);
      return w == nullptr ? a : a + load(w + k * H + j, n);
    };
    columns<T>(H, [&](int64_t j, int64_t n) {
      const V h_prev = load(hb + j, n);
      switch (cell) {
        case Cell::kLstm: {
          T* cb = c + b * H;
          const V c_prev = load(cb + j, n);
          V ai = pre(0, j, n), af = pre(1, j, n), ao = pre(3, j, n);
          if (peep != nullptr) {
            ai = ai + load(peep + j, n) * c_prev;
            af = af + load(peep + H + j, n) * c_prev;
          }
          const V cc = sigmoid(af) * c_prev + sigmoid(ai) * pre(2, j, n).tanh();
          if (peep != nullptr) ao = ao + load(peep + 2 * H + j, n) * cc;
          cc.store(cb + j, n);
          (sigmoid(ao) * cc.tanh()).store(hb + j, n);
          break;
        }
        case Cell::kGru: {  // n = tanh(x_n + r * (W_hn h + b_hn))
          const V r = sigmoid(pre(0, j, n)), z = sigmoid(pre(1, j, n));
          const V nn = (load(x + 2 * H + j, n) + r * load(w + 2 * H + j, n)).tanh();
          (nn + z * (h_prev - nn)).store(hb + j, n);  // (1-z)*n + z*h_{t-1}
          break;
        }
        case Cell::kGruMinimal: {
          const V z = sigmoid(pre(0, j, n)), nn = pre(1, j, n).tanh();
          (nn + z * (h_prev - nn)).store(hb + j, n);
          break;
        }
        case Cell::kRnnTanh:
          pre(0, j, n).tanh().store(hb + j, n);
          break;
        case Cell::kRnnRelu:
          at::vec::maximum(pre(0, j, n), V(T(0))).store(hb + j, n);
          break;
      }
    });
  }
}

// The next token of one row from its logits: argmax (greedy), or the first token whose
// cumulative probability under softmax(z / temperature) exceeds u; banned tokens never.
// `cdf` (V) is scratch space.
template <typename T>
int64_t draw(const T* z, const bool* banned, int64_t V, double temperature, bool greedy,
             double u, std::vector<double>& cdf) {
  double best = -std::numeric_limits<double>::infinity();
  int64_t best_v = -1;
  for (int64_t v = 0; v < V; ++v) {
    if (banned != nullptr && banned[v]) continue;
    if (best_v < 0 || static_cast<double>(z[v]) > best) best = z[v], best_v = v;
  }
  TORCH_CHECK(best_v >= 0 && std::isfinite(best), "sampling: the logits are not finite");
  if (greedy) return best_v;
  double total = 0.0;
  for (int64_t v = 0; v < V; ++v) {
    if (banned == nullptr || !banned[v]) total += std::exp((z[v] - best) / temperature);
    cdf[v] = total;
  }
  const double target = u * total;
  for (int64_t v = 0; v < V; ++v) {
    if (cdf[v] > target && (banned == nullptr || !banned[v])) return v;
  }
  return best_v;  // u * total rounded up to total: the most likely token
}

}  // namespace

// Draws `count` tokens for each of the B rows, starting from `logits` (B, V), the model's
// output after what was read so far, and steps the model after each draw (after the last one
// too when `step_last`, so that generation can go on in a later call). The states (per layer,
// (B, H) contiguous: h, and c for an LSTM) are updated in place. `uniforms` (count, B) are the
// draws' random numbers; `table` (V, G*H) is layer 0's W_ih * embedding + b_ih for every token;
// `head` the decoder's (weight, bias) pairs in order (a projection, then the output layer).
// Returns the tokens (count, B) and the logits after the last step.
std::vector<Tensor> generate(const std::string& cell_name, const Tensor& logits_in,
                             const Tensor& table,
                             const std::vector<std::vector<Tensor>>& layer_parts,
                             const std::vector<Tensor>& h_states,
                             const std::vector<Tensor>& c_states,
                             const std::vector<Tensor>& head, const Tensor& uniforms,
                             int64_t count, double temperature, bool greedy,
                             const Tensor& banned_in, bool step_last) {
  at::NoGradGuard no_grad;  // inference: the out= products refuse tensors that need grad
  const Cell cell = parse_cell(cell_name);
  const std::vector<Layer> layers = read_layers(layer_parts);
  const int64_t L = static_cast<int64_t>(layers.size()), B = logits_in.size(0),
                V = logits_in.size(1), GH = table.size(1);
  TORCH_CHECK(L >= 1 && static_cast<int64_t>(h_states.size()) == L, "one h state per layer");
  TORCH_CHECK(cell != Cell::kLstm || static_cast<int64_t>(c_states.size()) == L,
              "an LSTM needs one c state per layer");
  TORCH_CHECK(head.size() % 2 == 0 && !head.empty(), "head: (weight, bias) pairs");
  TORCH_CHECK(greedy || (uniforms.size(0) >= count && uniforms.size(1) == B),
              "uniforms must be (count, B)");
  TORCH_CHECK(temperature > 0.0, "temperature must be > 0");
  for (const Tensor& s : h_states) TORCH_CHECK(s.is_contiguous() && s.size(0) == B, "h states");
  for (const Tensor& s : c_states) TORCH_CHECK(s.is_contiguous() && s.size(0) == B, "c states");

  Tensor logits = logits_in.clone(at::MemoryFormat::Contiguous);  // the caller's stays
  Tensor tokens = at::empty({count, B}, table.options().dtype(at::kLong));
  const Tensor banned = given(banned_in) ? banned_in.to(at::kBool).contiguous() : Tensor();
  const Tensor u = greedy ? Tensor() : uniforms.to(at::kDouble).contiguous();
  Tensor pre_x = at::empty({B, GH}, table.options()), pre_h = at::empty_like(pre_x);
  std::vector<Tensor> joint_inputs(L);  // [h^{l-1}_t | h^l_{t-1}] for the joint products
  for (int64_t l = 1; l < L; ++l) {
    if (layers[l].joint()) joint_inputs[l] = at::empty({B, layers[l].input_weight.size(1)},
                                                        table.options());
  }
  std::vector<Tensor> head_out;  // the last layer writes the logits themselves
  for (size_t k = 0; k + 2 < head.size(); k += 2) {
    head_out.push_back(at::empty({B, head[k].size(0)}, table.options()));
  }
  TORCH_CHECK(head[head.size() - 2].size(0) == V,
              "the decoder's output size must be the vocabulary's");
  head_out.push_back(logits);

  AT_DISPATCH_FLOATING_TYPES(table.scalar_type(), "generate", [&] {
    const int64_t H = h_states[0].size(1);
    const bool* ban = banned.defined() ? banned.const_data_ptr<bool>() : nullptr;
    int64_t* out = tokens.data_ptr<int64_t>();
    std::vector<double> cdf(V);
    for (int64_t i = 0; i < count; ++i) {
      const scalar_t* z = logits.const_data_ptr<scalar_t>();
      for (int64_t b = 0; b < B; ++b) {
        const double ub = greedy ? 0.0 : u.const_data_ptr<double>()[i * B + b];
        out[i * B + b] = draw<scalar_t>(z + b * V, ban, V, temperature, greedy, ub, cdf);
      }
      if (i + 1 == count && !step_last) break;
      at::index_select_out(pre_x, table, 0, tokens[i]);  // layer 0: W_ih x + b_ih, looked up
      for (int64_t l = 0; l < L; ++l) {
        const Layer& layer = layers[l];
        Tensor h = h_states[l];
        bool summed = false;  // whether pre_x already holds the whole pre-activation
        if (l > 0 && layer.joint()) {
          Tensor& xh = joint_inputs[l];
          const int64_t I = xh.size(1) - H;
          xh.narrow(1, 0, I).copy_(h_states[l - 1]);
          xh.narrow(1, I, H).copy_(h);
          linear_out(pre_x, xh, layer.input_weight, layer.input_bias);
          summed = true;
        } else if (l > 0) {
          linear_out(pre_x, h_states[l - 1], layer.input_weight, layer.input_bias);
        }
        if (!summed) linear_out(pre_h, h, layer.hidden_weight, layer.hidden_bias);
        cell_pass<scalar_t>(cell, B, H, pre_x.const_data_ptr<scalar_t>(),
                            summed ? nullptr : pre_h.const_data_ptr<scalar_t>(),
                            given(layer.peepholes) ? layer.peepholes.const_data_ptr<scalar_t>()
                                                   : nullptr,
                            h.data_ptr<scalar_t>(),
                            cell == Cell::kLstm ? c_states[l].data_ptr<scalar_t>() : nullptr);
      }
      Tensor x = h_states[L - 1];
      for (size_t k = 0; k < head.size(); k += 2) {
        linear_out(head_out[k / 2], x, head[k], head[k + 1]);
        x = head_out[k / 2];
      }
    }
  });
  return {tokens, logits};
}

}  // namespace rnnlab
