"""The fused sequences against the textbook cells stepped in a Python loop (the oracle).

Every test runs twice: with fused.py's time loops compiled (native.py; skipped where they cannot
be built) and in Python.

The oracle calls `LSTMCell/GRUCell/RNNCell.recurrence` once per step and applies the padding
rule of `rnnlab.nn.fused` with plain autograd:
    h_t = m*h_new + (1-m)*h_{t-1}  (same for c),   out_t = m*h_new.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.nn import fused as fused_module
from rnnlab.nn import native
from rnnlab.nn.cells import GRUCell, LSTMCell, RNNCell
from rnnlab.nn.fused import MIN_STEPS_TO_PACK, gru_sequence, lstm_sequence, rnn_sequence

# kind -> (number of gates, has a cell state c, option passed to both paths)
KINDS = {
    "lstm": (4, True, None),
    "lstm-peephole": (4, True, "peephole"),
    "gru-full": (3, False, "full"),
    "gru-minimal": (2, False, "minimal"),
    "rnn-tanh": (1, False, "tanh"),
    "rnn-relu": (1, False, "relu"),
}


@pytest.fixture(autouse=True, params=["compiled", "python"])
def time_loops(request):
    """Run the test through the compiled loops, then through the Python ones."""
    compiled = request.param == "compiled"
    if compiled and not native.available():
        pytest.skip("the C++ recurrences could not be built here")
    with native.use_native(compiled):
        yield request.param


def make_inputs(kind, T, B, H, bias=True, dtype=torch.float64, seed=0):
    """Leaf tensors: x_proj (T, B, G*H), h0 [, c0], weight_hh, bias_hh [, 3 peepholes]."""
    gen = torch.Generator().manual_seed(seed)
    gates, has_c, option = KINDS[kind]

    def rand(*shape):
        return (torch.rand(*shape, generator=gen, dtype=dtype) * 2 - 1).requires_grad_()

    inputs = {"x_proj": rand(T, B, gates * H), "h0": rand(B, H)}
    if has_c:
        inputs["c0"] = rand(B, H)
    inputs["weight_hh"] = rand(gates * H, H)
    inputs["bias_hh"] = rand(gates * H) if bias else None
    if option == "peephole":
        inputs["peepholes"] = (rand(H), rand(H), rand(H))
    return inputs


def fused(kind, inputs, mask, bias_ih=None):
    option = KINDS[kind][2]
    x, h0, w, b = inputs["x_proj"], inputs["h0"], inputs["weight_hh"], inputs["bias_hh"]
    if kind.startswith("lstm"):
        return lstm_sequence(x, h0, inputs["c0"], w, b, inputs.get("peepholes"), mask=mask,
                             bias_ih=bias_ih)
    if kind.startswith("gru"):
        return gru_sequence(x, h0, w, b, variant=option, mask=mask, bias_ih=bias_ih)
    return rnn_sequence(x, h0, w, b, nonlinearity=option, mask=mask, bias_ih=bias_ih)


def loop(kind, inputs, mask):
    """The oracle: one `recurrence` call per step, padding applied with autograd."""
    option = KINDS[kind][2]
    x, w, b = inputs["x_proj"], inputs["weight_hh"], inputs["bias_hh"]
    state = (inputs["h0"], inputs["c0"]) if kind.startswith("lstm") else (inputs["h0"],)
    masks = mask.unbind(0) if mask is not None else [None] * x.shape[0]
    outs = []
    for x_t, m in zip(x.unbind(0), masks, strict=True):
        if kind.startswith("lstm"):
            new = LSTMCell.recurrence(x_t, state, w, b, inputs.get("peepholes"))
        elif kind.startswith("gru"):
            new = (GRUCell.recurrence(x_t, state[0], w, b, option),)
        else:
            new = (RNNCell.recurrence(x_t, state[0], w, b, option),)
        if m is None:
            outs.append(new[0])
            state = new
        else:
            outs.append(m * new[0])
            state = tuple(m * s_new + (1 - m) * s for s_new, s in zip(new, state, strict=True))
    return (torch.stack(outs), *state)


def mask_from(lengths, T, dtype=torch.float64):
    """(T, B, 1): 1.0 where t < length_b."""
    return (torch.arange(T)[:, None] < torch.as_tensor(lengths)[None, :]).to(dtype).unsqueeze(-1)


def leaves(inputs):
    flat = []
    for v in inputs.values():
        flat.extend(v if isinstance(v, tuple) else [v])
    return [v for v in flat if v is not None]


def results_and_grads(run, kind, inputs, mask, seed=1):
    """Outputs and the gradients of a random projection of all outputs w.r.t. every input."""
    results = run(kind, inputs, mask)
    gen = torch.Generator().manual_seed(seed)
    loss = sum((r * torch.randn(r.shape, generator=gen, dtype=r.dtype)).sum() for r in results)
    grads = torch.autograd.grad(loss, leaves(inputs))
    return [r.detach() for r in results], list(grads)


def assert_same(kind, inputs, mask, atol=1e-10):
    got, got_grads = results_and_grads(fused, kind, inputs, mask)
    want, want_grads = results_and_grads(loop, kind, inputs, mask)
    for g, w in zip(got + got_grads, want + want_grads, strict=True):
        torch.testing.assert_close(g, w, atol=atol, rtol=atol)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("masked", [False, True], ids=["full-length", "lengths"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_matches_loop_of_cells(kind, masked, bias):
    T, B, H = 7, 5, 6
    inputs = make_inputs(kind, T, B, H, bias=bias)
    mask = mask_from([7, 1, 4, 7, 2], T) if masked else None
    assert_same(kind, inputs, mask)


@pytest.mark.parametrize("kind", list(KINDS))
def test_padding_is_invisible(kind):
    """Past a sequence's end outputs are 0 and h_T is the state at its own last step."""
    T, B, H = 6, 3, 4
    lengths = [6, 2, 4]
    inputs = make_inputs(kind, T, B, H)
    out, h_T, *_ = fused(kind, inputs, mask_from(lengths, T))
    for b, n in enumerate(lengths):
        one = {k: (v[:n, b:b + 1] if k == "x_proj" else v[b:b + 1] if k in ("h0", "c0") else v)
               for k, v in inputs.items()}
        out_b, h_b, *_ = fused(kind, one, None)
        torch.testing.assert_close(out[:n, b:b + 1], out_b, atol=1e-12, rtol=1e-12)
        assert torch.all(out[n:, b] == 0)
        torch.testing.assert_close(h_T[b:b + 1], h_b, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("masked", [False, True], ids=["full-length", "lengths"])
def test_gradcheck(kind, masked):
    inputs = make_inputs(kind, T=3, B=2, H=2, seed=3)
    mask = mask_from([3, 2], 3) if masked else None
    names = list(inputs)

    def f(*flat):
        rebuilt, k = {}, 0
        for name in names:
            v = inputs[name]
            n = len(v) if isinstance(v, tuple) else 1
            rebuilt[name] = tuple(flat[k:k + n]) if isinstance(v, tuple) else flat[k]
            k += n
        return fused(kind, rebuilt, mask)

    flat = []
    for v in inputs.values():
        flat.extend(v if isinstance(v, tuple) else [v])
    assert torch.autograd.gradcheck(f, flat)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("T", [5, MIN_STEPS_TO_PACK + 4], ids=["torch.mm", "packed"])
def test_float32_non_contiguous_and_expanded_grad(kind, T):
    """float32 on both product paths (short: torch.mm; long: oneDNN's prepacked weight), a
    batch-first x_proj (a transposed view), loss = out.sum() (a stride-0 gradient)."""
    B, H = 3, 8
    inputs = make_inputs(kind, T, B, H, dtype=torch.float32)
    x_bf = inputs["x_proj"].detach().transpose(0, 1).contiguous().requires_grad_()
    inputs_t = dict(inputs, x_proj=x_bf.transpose(0, 1))  # (T, B, G*H), not contiguous
    mask = mask_from([T, 3, 1], T, torch.float32)
    got = fused(kind, inputs_t, mask)
    want = loop(kind, inputs, mask)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)
    got_grads = torch.autograd.grad(got[0].sum(), [x_bf, inputs["weight_hh"]])
    want_grads = torch.autograd.grad(want[0].sum(), [inputs["x_proj"], inputs["weight_hh"]])
    torch.testing.assert_close(got_grads[0].transpose(0, 1), want_grads[0], atol=1e-5, rtol=1e-5)
    # W_hh's gradient sums T*B products; a ReLU RNN's grow with T, and how float32 rounds them
    # depends on the CPU's matrix kernels. So both float32 paths are held to the float64 truth:
    # the fused one may be off by at most a few times what the step-by-step oracle is.
    truth_inputs = {name: (tuple(t.detach().double().requires_grad_() for t in value)
                           if isinstance(value, tuple) else
                           None if value is None else value.detach().double().requires_grad_())
                    for name, value in inputs.items()}
    truth = loop(kind, truth_inputs, mask.double())
    truth_grad = torch.autograd.grad(truth[0].sum(), [truth_inputs["weight_hh"]])[0]
    got_error = (got_grads[1].double() - truth_grad).abs().max().item()
    oracle_error = (want_grads[1].double() - truth_grad).abs().max().item()
    assert got_error <= 4 * oracle_error + 1e-6 * truth_grad.abs().max().item(), \
        (got_error, oracle_error)


def test_only_some_inputs_need_grad():
    """Frozen weights: no dW is computed, the other gradients still flow."""
    inputs = make_inputs("lstm-peephole", 4, 2, 3)
    inputs["weight_hh"].requires_grad_(False)
    out, h, c = fused("lstm-peephole", inputs, None)
    (out.sum() + c.sum()).backward()
    assert inputs["weight_hh"].grad is None and inputs["x_proj"].grad is not None


def test_bad_shapes_raise():
    x = torch.zeros(3, 2, 8)
    with pytest.raises(ValueError, match="lstm_sequence"):
        lstm_sequence(x, torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(12, 3), None)
    with pytest.raises(ValueError, match="variant"):
        gru_sequence(x, torch.zeros(2, 4), torch.zeros(8, 4), None, variant="tiny")
    with pytest.raises(ValueError, match="mask"):
        rnn_sequence(torch.zeros(3, 2, 4), torch.zeros(2, 4), torch.zeros(4, 4), None,
                     mask=torch.ones(3, 2))
    # the compiled loops read each bias as G*H numbers: a short one must not reach them
    with pytest.raises(ValueError, match="biases"):
        gru_sequence(torch.zeros(3, 2, 12), torch.zeros(2, 4), torch.zeros(12, 4), torch.zeros(4))
    with pytest.raises(ValueError, match="biases"):
        rnn_sequence(torch.zeros(3, 2, 4), torch.zeros(2, 4), torch.zeros(4, 4), None,
                     bias_ih=torch.zeros(3))


@settings(max_examples=15, deadline=None)
@given(
    kind=st.sampled_from(list(KINDS)),
    T=st.integers(1, 6),
    H=st.integers(1, 5),
    data=st.data(),
)
def test_property_random_shapes_and_lengths(kind, T, H, data):
    lengths = data.draw(st.lists(st.integers(1, T), min_size=1, max_size=4), label="lengths")
    masked = data.draw(st.booleans(), label="masked")
    inputs = make_inputs(kind, T, len(lengths), H, bias=data.draw(st.booleans(), label="bias"))
    assert_same(kind, inputs, mask_from(lengths, T) if masked else None)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("masked", [False, True], ids=["full-length", "lengths"])
def test_input_bias_taken_apart_equals_it_inside_x_proj(kind, masked):
    """The layers pass `project(x, W_ih)` and b_ih apart (the loops add it as they read x_proj):
    outputs and every gradient, x, W_ih and b_ih included, equal those of F.linear with bias."""
    T, B, H, I = 6, 3, 5, 4
    gates = KINDS[kind][0]
    gen = torch.Generator().manual_seed(3)
    shapes = ((T, B, I), (gates * H, I), (gates * H,))
    x, weight_ih, bias_ih = (torch.randn(*shape, generator=gen, dtype=torch.float64)
                             .requires_grad_() for shape in shapes)
    inputs = make_inputs(kind, T, B, H)
    mask = mask_from([T, 2, 4], T) if masked else None
    leaves_used = [x, weight_ih, bias_ih, *leaves(inputs)]

    def run(apart):
        given_inputs = {**inputs}
        if apart:
            given_inputs["x_proj"] = fused_module.project(x, weight_ih)
        else:
            given_inputs["x_proj"] = torch.nn.functional.linear(x, weight_ih, bias_ih)
        results = fused(kind, given_inputs, mask, bias_ih=bias_ih if apart else None)
        loss = sum((r * torch.linspace(-1, 1, r.numel(), dtype=r.dtype).view_as(r)).sum()
                   for r in results)
        return [r.detach() for r in results], torch.autograd.grad(loss, leaves_used,
                                                                   allow_unused=True)

    (got, got_grads), (want, want_grads) = run(True), run(False)
    for g, w in zip(got + [g for g in got_grads if g is not None],
                    want + [w for w in want_grads if w is not None], strict=True):
        torch.testing.assert_close(g, w, atol=1e-12, rtol=1e-12)
    assert [g is None for g in got_grads] == [w is None for w in want_grads]
