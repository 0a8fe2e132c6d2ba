"""The fast path: one direction of one recurrent layer, with hand-written backprop through time.

`cells.py` holds the equations; this module computes the very same numbers for a whole sequence
at once, faster. Each public function (`lstm_sequence`, `gru_sequence`, `rnn_sequence`) is
backed by a `torch.autograd.Function` whose

  * forward runs the time loop without autograd: the gate pre-activations of all steps start as
    one buffer `x_proj + b_hh`, each step adds `h_{t-1} W_hh^T` in place and activates the
    gates in place, and the activated gates are kept for the backward (the compiled loops add
    x_proj, the biases and the product as they read them, into buffers they keep between calls;
    the layers hand them `project(x, W_ih)` and b_ih apart, see `project`);
  * backward runs one reverse loop: per step, the local derivatives from the saved gates, the
    gate gradients (written straight into the gradient of x_proj) and d(h_{t-1}) = d(gates_t) W_hh;
    after the loop, dW_hh is ONE matrix product over all T*B rows and db_hh one sum.

Why so? A plain autograd time loop records ~15 nodes per step and reaches 0.4-0.5x
`torch.nn.LSTM` on CPU; `torch.jit.script` does not help; `torch.compile` is slow to warm up
and the time goes to the matrix products anyway. The local derivatives are computed per step
rather than for all steps at once because every fresh (T, B, H) temporary costs page faults
(about 0.4 ms per MB here), while (B, H) temporaries are recycled and stay in cache.

Padding (`mask`, (T, B, 1), 1.0 inside a sequence and 0.0 past its end): with h_new the cell's
output at step t, the carried state is h_t = m*h_new + (1-m)*h_{t-1} (same for c) and the output
is out_t = m*h_new, so outputs past a sequence's end are zero and the final state is each
sequence's own last valid state.

Under `torch.autocast` (bf16/fp16 training) the recurrence runs in float32 on every device:
each Function's forward casts its floating inputs to float32 and runs with autocast off
(`torch.amp.custom_fwd(cast_inputs=float32)`), and its backward runs with autocast off too. The
cell state is a running sum over all steps, which bf16's 8-bit mantissa would erode, and the
per-step (B, H) products are too small to gain from lower precision; the large products around
the recurrence (the input projection of all steps, the output layer) still follow autocast.

Shapes (legend in cells.py): x_proj (T, B, G*H), h0/c0 (B, H), weight_hh (G*H, H),
bias_hh (G*H,), out (T, B, H).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from rnnlab.nn.native import cpu_vendor, extension_for

Peepholes = tuple[Tensor, Tensor, Tensor]
AUTOCAST_DEVICES = ("cuda", "cpu")  # where autocast may be on: each gets its own declaration


def _float32_forward(forward):
    """Declare a Function's forward float32 under autocast, on every device (see docstring)."""
    for device_type in AUTOCAST_DEVICES:
        forward = torch.amp.custom_fwd(forward, device_type=device_type,
                                       cast_inputs=torch.float32)
    return forward


def _autocast_backward(backward):
    """Run a Function's backward with the autocast state its forward had (off, see above)."""
    for device_type in AUTOCAST_DEVICES:
        backward = torch.amp.custom_bwd(backward, device_type=device_type)
    return backward


def _contiguous(mask: Tensor | None) -> Tensor | None:
    return None if mask is None else mask.contiguous()


def _steps(mask: Tensor | None, T: int) -> tuple:
    """The per-step masks (B, 1), or T times None."""
    return (None,) * T if mask is None else mask.unbind(0)


def _prevs(first: Tensor, states: Tensor) -> tuple[Tensor, ...]:
    """The state each step starts from: (first, states[0], ..., states[T-2]), T views of (B, H)."""
    return (first, *states.unbind(0)[:-1])


def _start(x_proj: Tensor, bias_hh: Tensor | None) -> Tensor:
    """A contiguous (T, B, G*H) buffer holding x_proj + b_hh, to which h_{t-1} W^T is added."""
    gates = torch.empty(x_proj.shape, dtype=x_proj.dtype, device=x_proj.device)
    if bias_hh is None:
        return gates.copy_(x_proj)
    return torch.add(x_proj, bias_hh, out=gates)


def _tanh(x: Tensor, out: Tensor) -> Tensor:
    """out = tanh(x), as 2σ(2x) - 1 on CPU, where torch's tanh is 3-5x slower than its sigmoid.

    `out` may be `x` itself (in place).
    """
    if x.device.type != "cpu":
        return torch.tanh(x, out=out)
    return torch.mul(x, 2, out=out).sigmoid_().mul_(2).sub_(1)


def _d_state_out(dh: Tensor, d_out_t: Tensor, m: Tensor | None) -> Tensor:
    """∂L/∂h_new of one step from ∂L/∂h_t (carried) and ∂L/∂out_t.

    Differentiates h_t = m*h_new + (1-m)*h_{t-1} and out_t = m*h_new (m = 1 without a mask).
    """
    dh_new = dh + d_out_t
    return dh_new if m is None else dh_new.mul_(m)


def _weight_grads(ctx, d_pre: Tensor, h0: Tensor, h_all: Tensor, w_index: int, b_index: int):
    """dW_hh = Σ_t d_pre_t^T h_{t-1} and db_hh = Σ_t d_pre_t, over all T*B rows at once.

    d_pre (T, B, G*H) is ∂L/∂(h_{t-1} W_hh^T + b_hh); h_{t-1} is h0 at t = 0 and h_all[t-1] after.
    The compiled loops' weight_grad copies them into one buffer for one product (a second
    product for h0's step alone costs more than the copy: it reads and writes all of dW); the
    Python loops add that second product.
    """
    d_w = d_b = None
    native = getattr(ctx, "native", None)
    if native is not None:
        d_w = _native_weight_grad(ctx, [d_pre], h0, h_all, w_index)
    elif ctx.needs_input_grad[w_index]:
        d_w = d_pre[0].t().mm(h0)  # (G*H, H)
        if d_pre.shape[0] > 1:
            rows = d_pre[1:].reshape(-1, d_pre.shape[-1])  # ((T-1)*B, G*H)
            d_w.addmm_(rows.t(), h_all[:-1].reshape(-1, h0.shape[-1]))
    if ctx.needs_input_grad[b_index]:
        d_b = d_pre.sum((0, 1))
    return d_w, d_b


def _bias_grad(ctx, d_x: Tensor, index: int) -> Tensor | None:
    """∂L/∂b_ih = Σ_t ∂L/∂x_proj_t over all T*B rows, where the Function took b_ih apart."""
    return d_x.sum((0, 1)) if ctx.needs_input_grad[index] else None


def _native_weight_grad(ctx, blocks: list[Tensor], h0: Tensor, h_all: Tensor,
                       index: int) -> Tensor | None:
    """dW_hh from a compiled loop's ∂L/∂(h W_hh^T + b_hh), which may come in blocks of columns
    (the full GRU's d_rz and d_hn): one product over [h0, h_all[:-1]]."""
    return ctx.native.weight_grad(blocks, h_all, h0) if ctx.needs_input_grad[index] else None


def _joined(bias_ih: Tensor | None, bias_hh: Tensor | None) -> Tensor | None:
    """b_ih + b_hh, for cells where both are added to the same pre-activation."""
    if bias_ih is None or bias_hh is None:
        return bias_hh if bias_ih is None else bias_ih
    return bias_ih + bias_hh


class _Projection(torch.autograd.Function):
    """x W^T over all steps into the compiled loops' buffer cache (csrc/block_cache.h)."""

    @staticmethod
    def forward(ctx, x, weight):
        ctx.save_for_backward(x, weight)
        return extension_for(x).project(x.contiguous(), weight.t())

    @staticmethod
    @once_differentiable
    def backward(ctx, d):
        x, weight = ctx.saved_tensors
        d = d.contiguous()
        native = extension_for(d)
        d_x = native.project(d, weight) if ctx.needs_input_grad[0] else None
        d_w = native.weight_grad([d], x, None) if ctx.needs_input_grad[1] else None
        return d_x, d_w


def project(x: Tensor, weight_ih: Tensor) -> Tensor:
    """The input projections of all steps, x W_ih^T (T, B, G*H), without b_ih: the sequences
    below take b_ih apart and add it as they read x_proj, which spares addmm's pass that first
    copies the bias into every row. Where the compiled loops run, into their buffer cache (fresh
    memory faults in page by page); elsewhere, and under autocast, F.linear."""
    if (extension_for(x) is None or weight_ih.dtype != x.dtype or weight_ih.device != x.device
            or torch.is_autocast_enabled(x.device.type)):
        return F.linear(x, weight_ih)
    return _Projection.apply(x, weight_ih)


# Reordering a weight for oneDNN costs about as much as 2-3 products, so short sequences skip it.
MIN_STEPS_TO_PACK = 16


# The C++ loops (native.py) pack only where oneDNN's linear beat torch.mm, whole layers timed
# fwd+bwd at one thread: on an AMD EPYC (Zen 1) it won by 7-14% for (20-32, 512-650) x
# (512-650, 1536-2048) and lost by 10-40% at H = 200 (B 20), so wide layers pack there; on an
# Intel Xeon with AVX-512 torch.mm (MKL) won at every width (RNN, GRU and peephole LSTM: by 5-17%
# at H = 512-650, 17-41% at 200), so nothing packs on Intel CPUs. Where the loops' own step
# product runs (csrc/step_product.h: AVX-512, batches of up to 64 rows), nothing packs either:
# on a Zen 5 EPYC it beat oneDNN's packed linear at every width of configs (a)-(d), at one
# thread (a 2x650 GRU step 5% faster) and two (35 products of (20, 650) x (650, 1950): 4.1
# against 5.0 ms; of (32, 512) x (512, 1536): 15.7 against 16.7 ms).
NATIVE_MIN_HIDDEN_TO_PACK: int | None = None if cpu_vendor() == "GenuineIntel" else 384


def _packed(weight: Tensor, steps: int, batch: int, transpose: bool = False,
            min_hidden: int = 0) -> Tensor | None:
    """`weight` (or its transpose, for the backward's d_pre W) reordered once for oneDNN's
    linear, as (out, in); None where torch.mm is the faster or the only choice (float64, CUDA,
    short sequences, narrow layers)."""
    if (steps < MIN_STEPS_TO_PACK or weight.shape[1] < min_hidden
            or weight.device.type != "cpu" or weight.dtype != torch.float32
            or not torch.backends.mkldnn.is_available()):
        return None
    out_in = weight.t().contiguous() if transpose else weight.contiguous()
    return torch.ops.mkldnn._reorder_linear_weight(out_in, batch)


def _step_product_runs(weight: Tensor, batch: int) -> bool:
    """Whether the compiled loops multiply by `weight` with their own step product."""
    native = extension_for(weight)
    return native is not None and native.step_product_applies(weight, batch)


def _native_packed(weight: Tensor, steps: int, batch: int, transpose: bool = False):
    """The packed weight for the C++ loops, which pack only wide layers, not on Intel, and not
    where their own step product runs."""
    if NATIVE_MIN_HIDDEN_TO_PACK is None or _step_product_runs(weight, batch):
        return None
    return _packed(weight, steps, batch, transpose, NATIVE_MIN_HIDDEN_TO_PACK)


class _Product:
    """x -> x @ weight^T (or x @ weight with `transpose=True`): the product inside a time loop.

    For float32 on CPU, sequences of MIN_STEPS_TO_PACK steps or more run oneDNN's linear on a
    weight reordered once per sequence (the prepacked weight of torch.compile's CPU backend):
    20-30% faster than torch.mm for these skinny (B, H) x (H, G*H) products. Elsewhere (float64,
    CUDA, short sequences) torch.mm.
    """

    def __init__(self, weight: Tensor, steps: int, batch: int, transpose: bool = False) -> None:
        self.right = weight if transpose else weight.t()  # x @ right
        self.packed = _packed(weight, steps, batch, transpose)

    def __call__(self, x: Tensor) -> Tensor:
        if self.packed is not None:
            return torch.ops.mkldnn._linear_pointwise(x, self.packed, None, "none", [], "")
        return torch.mm(x, self.right)

    def add_to(self, out: Tensor, x: Tensor) -> Tensor:
        """out += x @ right, in place."""
        if self.packed is not None:
            return out.add_(self(x))
        return out.addmm_(x, self.right)

    def into(self, out: Tensor, x: Tensor, bias: Tensor | None) -> Tensor:
        """out = x @ right + bias."""
        if self.packed is not None:
            linear = torch.ops.mkldnn._linear_pointwise(x, self.packed, bias, "none", [], "")
            return out.copy_(linear)
        if bias is None:
            return torch.mm(x, self.right, out=out)
        return torch.addmm(bias, x, self.right, out=out)


class _LSTMFunction(torch.autograd.Function):
    @staticmethod
    @_float32_forward
    def forward(ctx, x_proj, h0, c0, weight_hh, bias_hh, w_ci, w_cf, w_co, mask):
        peephole = w_ci is not None
        native = extension_for(x_proj)
        ctx.native = native
        if native is not None:  # the same loop in C++ (csrc/recurrences.cpp)
            peep = torch.stack([w_ci, w_cf, w_co]) if peephole else None
            out, gates, tanh_c, c_new, c_all, h_all = native.lstm_forward(
                x_proj, h0, c0, weight_hh, bias_hh, peep, _contiguous(mask),
                _native_packed(weight_hh, *x_proj.shape[:2]))
            ctx.save_for_backward(gates, tanh_c, c_new if peephole else None, c_all, h_all, h0,
                                  c0, weight_hh, w_ci, w_cf, w_co, mask)
            return out, h_all[-1].clone(), c_all[-1].clone()
        T, B, _ = x_proj.shape
        H = h0.shape[1]
        w_cif = torch.stack([w_ci, w_cf]) if peephole else None  # (2, H): i and f peek at c_{t-1}
        gates = _start(x_proj, bias_hh)  # (T, B, 4H) pre-activations, activated in place
        h_new, c_new, tanh_c = (x_proj.new_empty(T, B, H) for _ in range(3))
        # The carried states differ from the cell's outputs only past a sequence's end.
        h_all, c_all = (h_new, c_new) if mask is None else (torch.empty_like(h_new) for _ in "hc")
        product = _Product(weight_hh, T, B)
        h, c = h0, c0
        steps = zip(gates.unbind(0), h_new.unbind(0), c_new.unbind(0), tanh_c.unbind(0),
                    h_all.unbind(0), c_all.unbind(0), _steps(mask, T), strict=True)
        for g, hn, cn, tc, ht, ct, m in steps:
            product.add_to(g, h)  # x_proj_t + b_hh + h_{t-1} W_hh^T
            g4 = g.view(B, 4, H)
            if peephole:
                g4[:, :2].addcmul_(c.unsqueeze(1), w_cif)  # + w_ci*c_{t-1}, + w_cf*c_{t-1}
            i, f, g_, o = g4.unbind(1)
            # One sigmoid for i, f, g (and o): g = tanh(a) = 2σ(2a) - 1, see _tanh
            g_.mul_(2)
            g4[:, :3 if peephole else 4].sigmoid_()
            g_.mul_(2).sub_(1)
            torch.mul(f, c, out=cn).addcmul_(i, g_)  # c = f*c_{t-1} + i*g
            if peephole:
                o.addcmul_(cn, w_co).sigmoid_()  # o = σ(.. + w_co*c_t)
            torch.mul(o, _tanh(cn, out=tc), out=hn)  # h = o*tanh(c)
            if m is not None:
                torch.lerp(h, hn, m, out=ht)  # m*h_new + (1-m)*h_{t-1}, exact for m in {0, 1}
                torch.lerp(c, cn, m, out=ct)
            h, c = ht, ct
        out = h_new if mask is None else h_new.mul_(mask)  # the backward needs no h_new
        ctx.save_for_backward(gates, tanh_c, c_new if peephole else None, c_all, h_all, h0, c0,
                              weight_hh, w_ci, w_cf, w_co, mask)
        return out, h.clone(), c.clone()

    @staticmethod
    @once_differentiable
    @_autocast_backward
    def backward(ctx, d_out, d_hT, d_cT):
        gates, tanh_c, c_new, c_all, h_all, h0, c0, w, w_ci, w_cf, w_co, mask = ctx.saved_tensors
        T, B, H4 = gates.shape
        H = H4 // 4
        peephole = w_ci is not None
        if ctx.native is not None:
            peep = torch.stack([w_ci, w_cf, w_co]) if peephole else None
            d_gates, dh, dc, d_peep, d_b = ctx.native.lstm_backward(
                d_out, d_hT, d_cT, gates, tanh_c, c_new, c_all, c0, w, peep, _contiguous(mask),
                _native_packed(w, T, B, transpose=True), ctx.needs_input_grad[1],
                ctx.needs_input_grad[4])
            d_w = _native_weight_grad(ctx, [d_gates], h0, h_all, 3)  # d_b: the loop's sum
            d_w_ci = d_w_cf = d_w_co = None
            if peephole:
                d_w_ci, d_w_cf, d_w_co = d_peep.sum(0).unbind(0)
            return d_gates, dh, dc, d_w, d_b, d_w_ci, d_w_cf, d_w_co, None
        one = gates.new_ones(())
        d_gates = torch.empty_like(gates)  # (T, B, 4H): ∂L/∂gate pre-activations = ∂L/∂x_proj
        d_peep = gates.new_zeros(B, 3, H) if peephole else None  # Σ_t, summed over B at the end
        product = _Product(w, T, B, transpose=True)
        steps = list(zip(gates.unbind(0), d_gates.unbind(0), tanh_c.unbind(0), _prevs(c0, c_all),
                         c_new.unbind(0) if peephole else (None,) * T, d_out.unbind(0),
                         _steps(mask, T), _steps(None if mask is None else 1 - mask, T),
                         strict=True))
        dh, dc = d_hT, d_cT  # ∂L/∂(carried h_t, c_t)
        for g_t, d_pre, tc, c_prev, c_t, d_out_t, m, om in reversed(steps):
            i, f, g, o = g_t.view(B, 4, H).unbind(1)  # activated gates, (B, H) each
            sig = torch.addcmul(g_t, g_t, g_t, value=-1).view(B, 4, H)  # σ(1-σ) of i, f, (g), o
            d4 = d_pre.view(B, 4, H)
            d_i, d_f, d_g, d_o = d4.unbind(1)
            dh_new = _d_state_out(dh, d_out_t, m)
            dc_new = dc if m is None else dc * m  # c_t = m*c_new + (1-m)*c_{t-1}
            # h = o*tanh(c): ∂L/∂o_pre = ∂L/∂h tanh(c) σ'(o), ∂L/∂c += ∂L/∂h o (1 - tanh²(c))
            torch.mul(dh_new, tc, out=d_o).mul_(sig[:, 3])
            dc_new = torch.addcmul(dc_new, dh_new, torch.addcmul(one, tc, tc, value=-1).mul_(o))
            if peephole:
                dc_new.addcmul_(d_o, w_co)  # o_pre = .. + w_co*c
            # c = f*c_{t-1} + i*g: ∂L/∂i_pre = ∂L/∂c g σ'(i), ∂L/∂f_pre = ∂L/∂c c_{t-1} σ'(f),
            # ∂L/∂g_pre = ∂L/∂c i (1 - g²), ∂L/∂c_{t-1} = ∂L/∂c f
            torch.mul(dc_new.unsqueeze(1), sig[:, :2], out=d4[:, :2])
            d_i.mul_(g)
            d_f.mul_(c_prev)
            torch.addcmul(one, g, g, value=-1, out=d_g).mul_(i).mul_(dc_new)
            dc_prev = dc_new * f
            if peephole:  # i_pre, f_pre = .. + w_ci*c_{t-1}, w_cf*c_{t-1}
                dc_prev.addcmul_(d_i, w_ci).addcmul_(d_f, w_cf)
                d_peep[:, :2].addcmul_(d4[:, :2], c_prev.unsqueeze(1))
                d_peep[:, 2].addcmul_(d_o, c_t)
            # gates = x_proj + b_hh + h_{t-1} W_hh^T
            dh_prev = product(d_pre)
            if m is not None:  # the carried (1-m)*h_{t-1}, (1-m)*c_{t-1}
                dh_prev.addcmul_(dh, om)
                dc_prev.addcmul_(dc, om)
            dh, dc = dh_prev, dc_prev
        d_w, d_b = _weight_grads(ctx, d_gates, h0, h_all, 3, 4)
        d_w_ci = d_w_cf = d_w_co = None
        if peephole:
            d_w_ci, d_w_cf, d_w_co = d_peep.sum(0).unbind(0)
        return d_gates, dh, dc, d_w, d_b, d_w_ci, d_w_cf, d_w_co, None


class _GRUFunction(torch.autograd.Function):
    @staticmethod
    @_float32_forward
    def forward(ctx, x_proj, h0, weight_hh, bias_hh, full, mask, bias_ih):
        ctx.full = full
        native = extension_for(x_proj)
        ctx.native = native
        if native is not None:  # the same loop in C++ (csrc/recurrences.cpp)
            out, gates, h_proj, h_all = native.gru_forward(
                x_proj, h0, weight_hh, bias_hh, full, _contiguous(mask),
                _native_packed(weight_hh, *x_proj.shape[:2]), bias_ih)
            ctx.save_for_backward(gates, h_proj, h_all, h0, weight_hh, mask)
            return out, h_all[-1].clone()
        if bias_ih is not None:  # the C++ loop adds it as it reads x_proj
            x_proj = x_proj + bias_ih
        T, B, _ = x_proj.shape
        H = h0.shape[1]
        h_new = x_proj.new_empty(T, B, H)
        h_all = h_new if mask is None else torch.empty_like(h_new)
        product = _Product(weight_hh, T, B)
        h = h0
        if full:  # r*(W_hn h + b_hn) keeps the recurrent product apart from x_proj
            gates = torch.empty_like(x_proj, memory_format=torch.contiguous_format)  # r, z, n
            h_proj = torch.empty_like(gates)  # (T, B, 3H) = h_{t-1} W_hh^T + b_hh
        else:  # every gate is σ/tanh(x_proj + b + h W^T): fold it all into one buffer
            gates = _start(x_proj, bias_hh)  # (T, B, 2H): z, n
            h_proj = None
        steps = zip(gates.unbind(0), x_proj.unbind(0), h_new.unbind(0), h_all.unbind(0),
                    h_proj.unbind(0) if full else gates.unbind(0), _steps(mask, T), strict=True)
        for g, x, hn, ht, hp, m in steps:
            if full:
                product.into(hp, h, bias_hh)  # W_hh h_{t-1} + b_hh
                torch.add(x[:, :2 * H], hp[:, :2 * H], out=g[:, :2 * H]).sigmoid_()  # r, z
                r, z, n = g.view(B, 3, H).unbind(1)
                torch.addcmul(x[:, 2 * H:], r, hp[:, 2 * H:], out=n)
                _tanh(n, out=n)  # n = tanh(x_n + r*(W_hn h_{t-1} + b_hn))
            else:
                product.add_to(g, h)
                z, n = g.view(B, 2, H).unbind(1)
                n.mul_(2)  # one sigmoid for z and n: n = tanh(a) = 2σ(2a) - 1, see _tanh
                g.sigmoid_()
                n.mul_(2).sub_(1)
            torch.lerp(n, h, z, out=hn)  # h = (1-z)*n + z*h_{t-1}
            if m is not None:
                torch.lerp(h, hn, m, out=ht)  # m*h_new + (1-m)*h_{t-1}
            h = ht
        out = h_new if mask is None else h_new.mul_(mask)  # the backward needs no h_new
        ctx.save_for_backward(gates, h_proj, h_all, h0, weight_hh, mask)
        return out, h.clone()

    @staticmethod
    @once_differentiable
    @_autocast_backward
    def backward(ctx, d_out, d_hT):
        gates, h_proj, h_all, h0, w, mask = ctx.saved_tensors
        full = ctx.full
        if ctx.native is not None:
            d_x, d_hn, dh, sums = ctx.native.gru_backward(
                d_out, d_hT, gates, h_proj, h_all, h0, w, full, _contiguous(mask),
                _native_packed(w, *gates.shape[:2], transpose=True), ctx.needs_input_grad[1],
                ctx.needs_input_grad[3] or ctx.needs_input_grad[6])
            # sums: the columns of d_x, then (full) of d_hn, added up by the loop
            GH = gates.shape[-1]
            d_b_ih = sums[:GH] if ctx.needs_input_grad[6] else None
            if not full:  # d_x is ∂L/∂(h W_hh^T + b) too
                d_w = _native_weight_grad(ctx, [d_x], h0, h_all, 2)
                d_b = sums[:GH] if ctx.needs_input_grad[3] else None
                return d_x, dh, d_w, d_b, None, None, d_b_ih
            H = GH // 3  # ∂L/∂(h W_hh^T + b_hh): d_x's r and z blocks, then d_hn
            d_w = _native_weight_grad(ctx, [d_x[..., :2 * H], d_hn], h0, h_all, 2)
            d_b = torch.cat([sums[:2 * H], sums[3 * H:]]) if ctx.needs_input_grad[3] else None
            return d_x, dh, d_w, d_b, None, None, d_b_ih
        T, B, GH = gates.shape
        H = h0.shape[1]
        one = gates.new_ones(())
        d_pre = torch.empty_like(gates)  # ∂L/∂(h_{t-1} W_hh^T + b_hh), (T, B, G*H)
        # ∂L/∂x_proj equals d_pre except for x_n of the full GRU, which r does not multiply
        d_x = torch.empty_like(gates) if full else d_pre
        product = _Product(w, T, B, transpose=True)
        steps = list(zip(gates.unbind(0), d_pre.unbind(0), d_x.unbind(0),
                         h_proj.unbind(0) if full else (None,) * T, _prevs(h0, h_all),
                         d_out.unbind(0), _steps(mask, T),
                         _steps(None if mask is None else 1 - mask, T), strict=True))
        dh = d_hT  # ∂L/∂(carried h_t)
        for g_t, d_pre_t, d_x_t, hp, h_prev, d_out_t, m, om in reversed(steps):
            dh_new = _d_state_out(dh, d_out_t, m)
            *rz, n = g_t.view(B, -1, H).unbind(1)  # activated gates: (r,) z, n
            z = rz[-1]
            *d_rz, d_hn = d_pre_t.view(B, -1, H).unbind(1)
            d_n = d_x_t[:, -H:]  # ∂L/∂n_pre = ∂L/∂x_n
            # h = (1-z)*n + z*h_{t-1}: ∂L/∂n_pre = ∂L/∂h (1-z)(1-n²),
            # ∂L/∂z_pre = ∂L/∂h (h_{t-1} - n) σ'(z)
            torch.addcmul(dh_new, dh_new, z, value=-1, out=d_n).mul_(
                torch.addcmul(one, n, n, value=-1))
            torch.sub(h_prev, n, out=d_rz[-1]).mul_(dh_new).mul_(torch.addcmul(z, z, z, value=-1))
            # full: n_pre = x_n + r*hp_n, hp_n = W_hn h_{t-1} + b_hn:
            # ∂L/∂r_pre = ∂L/∂n_pre hp_n σ'(r), ∂L/∂hp_n = ∂L/∂n_pre r
            if full:
                r = rz[0]
                torch.mul(d_n, hp[:, 2 * H:], out=d_rz[0]).mul_(torch.addcmul(r, r, r, value=-1))
                torch.mul(d_n, r, out=d_hn)
            # ∂L/∂h_{t-1} = dh_new*z (the z*h_{t-1} term) + d_pre W (the recurrent product)
            dh_prev = product.add_to(torch.mul(dh_new, z), d_pre_t)
            if m is not None:
                dh_prev.addcmul_(dh, om)  # the carried (1-m)*h_{t-1}
            dh = dh_prev
        if full:
            d_x[:, :, :2 * H] = d_pre[:, :, :2 * H]  # x_r, x_z enter like hp_r, hp_z
        d_w, d_b = _weight_grads(ctx, d_pre, h0, h_all, 2, 3)
        return d_x, dh, d_w, d_b, None, None, _bias_grad(ctx, d_x, 6)


class _RNNFunction(torch.autograd.Function):
    @staticmethod
    @_float32_forward
    def forward(ctx, x_proj, h0, weight_hh, bias_hh, relu, mask):
        ctx.relu = relu
        native = extension_for(x_proj)
        ctx.native = native
        if native is not None:  # the same loop in C++ (csrc/recurrences.cpp)
            out, h_new, h_all = native.rnn_forward(x_proj, h0, weight_hh, bias_hh, relu,
                                                   _contiguous(mask),
                                                   _native_packed(weight_hh, *x_proj.shape[:2]))
            ctx.save_for_backward(h_new, h_all, h0, weight_hh, mask)
            return out, h_all[-1].clone()
        T = x_proj.shape[0]
        h_new = _start(x_proj, bias_hh)  # (T, B, H) pre-activations, activated in place
        h_all = h_new if mask is None else torch.empty_like(h_new)
        product = _Product(weight_hh, T, h0.shape[0])
        h = h0
        for hn, ht, m in zip(h_new.unbind(0), h_all.unbind(0), _steps(mask, T), strict=True):
            product.add_to(hn, h)  # x_proj_t + b_hh + h_{t-1} W_hh^T
            hn.relu_() if relu else _tanh(hn, out=hn)
            if m is not None:
                torch.lerp(h, hn, m, out=ht)  # m*h_new + (1-m)*h_{t-1}
            h = ht
        out = h_new if mask is None else h_new * mask  # h_new stays: act' reads it
        ctx.save_for_backward(h_new, h_all, h0, weight_hh, mask)
        return out, h.clone()

    @staticmethod
    @once_differentiable
    @_autocast_backward
    def backward(ctx, d_out, d_hT):
        h_new, h_all, h0, w, mask = ctx.saved_tensors
        if ctx.native is not None:
            d_pre, dh = ctx.native.rnn_backward(
                d_out, d_hT, h_new, w, ctx.relu, _contiguous(mask),
                _native_packed(w, *h_new.shape[:2], transpose=True), ctx.needs_input_grad[1])
            d_w, d_b = _weight_grads(ctx, d_pre, h0, h_all, 2, 3)
            return d_pre, dh, d_w, d_b, None, None
        T = h_new.shape[0]
        one = h_new.new_ones(())
        d_pre = torch.empty_like(h_new)  # ∂L/∂pre = ∂L/∂x_proj, (T, B, H)
        product = _Product(w, T, h0.shape[0], transpose=True)
        steps = list(zip(h_new.unbind(0), d_pre.unbind(0), d_out.unbind(0), _steps(mask, T),
                         _steps(None if mask is None else 1 - mask, T), strict=True))
        dh = d_hT  # ∂L/∂(carried h_t)
        for hn, d_pre_t, d_out_t, m, om in reversed(steps):
            dh_new = _d_state_out(dh, d_out_t, m)
            # h = act(pre): relu' = [pre > 0] = [h > 0], tanh' = 1 - h²
            if ctx.relu:
                torch.mul(dh_new, hn > 0, out=d_pre_t)
            else:
                torch.addcmul(one, hn, hn, value=-1, out=d_pre_t).mul_(dh_new)
            dh_prev = product(d_pre_t)  # pre = .. + h_{t-1} W_hh^T
            if m is not None:
                dh_prev.addcmul_(dh, om)  # the carried (1-m)*h_{t-1}
            dh = dh_prev
        d_w, d_b = _weight_grads(ctx, d_pre, h0, h_all, 2, 3)
        return d_pre, dh, d_w, d_b, None, None


def _check(name: str, x_proj: Tensor, h0: Tensor, weight_hh: Tensor, gates: int,
           mask: Tensor | None, biases: tuple[Tensor | None, ...] = ()) -> None:
    """Shape errors here read better than a failed addmm deep inside the time loop (and the
    compiled loops read each bias as G*H numbers)."""
    if x_proj.dim() != 3 or x_proj.shape[0] < 1:
        raise ValueError(
            f"{name}: x_proj must be (T, B, G*H) with T >= 1, got {tuple(x_proj.shape)}"
        )
    T, B, GH = x_proj.shape
    H = h0.shape[-1]
    if h0.shape != (B, H) or GH != gates * H or weight_hh.shape != (gates * H, H):
        raise ValueError(
            f"{name}: expected x_proj (T, B, {gates}*H), h0 (B, H), weight_hh ({gates}*H, H); got "
            f"{tuple(x_proj.shape)}, {tuple(h0.shape)}, {tuple(weight_hh.shape)}"
        )
    if mask is not None and mask.shape != (T, B, 1):
        raise ValueError(f"{name}: mask must be (T, B, 1) = {(T, B, 1)}, got {tuple(mask.shape)}")
    for bias in biases:
        if bias is not None and bias.shape != (GH,):
            raise ValueError(f"{name}: biases must be ({gates}*H,) = ({GH},), got "
                             f"{tuple(bias.shape)}")


def lstm_sequence(
    x_proj: Tensor, h0: Tensor, c0: Tensor, weight_hh: Tensor, bias_hh: Tensor | None,
    peepholes: Peepholes | None = None, mask: Tensor | None = None,
    bias_ih: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Run `LSTMCell.recurrence` over all T steps; same numbers, hand-written BPTT.

    Args:
        x_proj: (T, B, 4H) = x W_ih^T + b_ih for all steps, gate order i, f, g, o.
        h0, c0: (B, H) initial state.
        weight_hh: (4H, H); bias_hh: (4H,) or None.
        peepholes: None or (w_ci, w_cf, w_co), each (H,).
        mask: None or (T, B, 1), 1.0 for t < length_b, else 0.0 (see module docstring).
        bias_ih: (4H,) or None: b_ih where x_proj is `project(x, W_ih)`, without it.
    Returns:
        out (T, B, H), h_T (B, H), c_T (B, H): the final carried states.
    """
    _check("lstm_sequence", x_proj, h0, weight_hh, 4, mask, (bias_hh, bias_ih))
    w_ci, w_cf, w_co = peepholes if peepholes is not None else (None, None, None)
    return _LSTMFunction.apply(x_proj, h0, c0, weight_hh, _joined(bias_ih, bias_hh), w_ci, w_cf,
                               w_co, mask)


def gru_sequence(
    x_proj: Tensor, h0: Tensor, weight_hh: Tensor, bias_hh: Tensor | None,
    variant: str = "full", mask: Tensor | None = None, bias_ih: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Run `GRUCell.recurrence` over all T steps; same numbers, hand-written BPTT.

    Args:
        x_proj: (T, B, G*H) = x W_ih^T + b_ih; G = 3 (r, z, n) for "full", 2 (z, n) for "minimal".
        h0: (B, H). weight_hh: (G*H, H); bias_hh: (G*H,) or None.
        mask: None or (T, B, 1), 1.0 for t < length_b, else 0.0 (see module docstring).
        bias_ih: (G*H,) or None: b_ih where x_proj is `project(x, W_ih)`, without it.
    Returns:
        out (T, B, H), h_T (B, H).
    """
    if variant not in ("full", "minimal"):
        raise ValueError(f"GRU variant must be 'full' or 'minimal', got {variant!r}")
    full = variant == "full"
    _check("gru_sequence", x_proj, h0, weight_hh, 3 if full else 2, mask, (bias_hh, bias_ih))
    if not full:  # every gate adds both biases to the same pre-activation
        bias_hh, bias_ih = _joined(bias_ih, bias_hh), None
    return _GRUFunction.apply(x_proj, h0, weight_hh, bias_hh, full, mask, bias_ih)


def rnn_sequence(
    x_proj: Tensor, h0: Tensor, weight_hh: Tensor, bias_hh: Tensor | None,
    nonlinearity: str = "tanh", mask: Tensor | None = None, bias_ih: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Run `RNNCell.recurrence` over all T steps; same numbers, hand-written BPTT.

    Args:
        x_proj: (T, B, H) = x W_ih^T + b_ih. h0: (B, H). weight_hh: (H, H); bias_hh: (H,) or None.
        nonlinearity: "tanh" or "relu".
        mask: None or (T, B, 1), 1.0 for t < length_b, else 0.0 (see module docstring).
        bias_ih: (H,) or None: b_ih where x_proj is `project(x, W_ih)`, without it.
    Returns:
        out (T, B, H), h_T (B, H).
    """
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    _check("rnn_sequence", x_proj, h0, weight_hh, 1, mask, (bias_hh, bias_ih))
    return _RNNFunction.apply(x_proj, h0, weight_hh, _joined(bias_ih, bias_hh),
                              nonlinearity == "relu", mask)
