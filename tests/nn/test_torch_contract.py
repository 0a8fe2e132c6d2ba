"""rnnlab's layers and cells keep torch.nn's calling contract where PyTorch's own tests pin it.

Ported (rewritten) from PyTorch's test_nn.py RNN tests (test_rnn_args_check,
test_RNN_input_size_zero / zero batch, test_RNN_dropout_warning, test_RNN_change_dropout,
test_rnn_check_device / dtype, the unbatched-input cases of test_modules.py's RNN sample inputs,
parametrizations and pruning on RNN weights). torch.nn is the oracle throughout: the same call
goes to torch's module and to rnnlab's, and both must return the same numbers or raise the same
exception class.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.nn.utils import parametrizations, prune

import rnnlab.nn as rn
from rnnlab.errors import RnnlabError

KINDS = ("LSTM", "GRU", "RNN")
IMPLS = ("loop", "fused")


def _pair(kind, impl="auto", **kwargs):
    """torch.nn's layer and rnnlab's, same arguments, same weights."""
    torch.manual_seed(0)
    ref = getattr(torch.nn, kind)(3, 4, **kwargs)
    ours = getattr(rn, kind)(3, 4, impl=impl, **kwargs)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def _state(kind, *shape):
    h = torch.randn(*shape)
    return (h, torch.randn(*shape)) if kind == "LSTM" else h


def _tuple(state):
    return state if isinstance(state, tuple) else (state,)


def _assert_same(a, b):
    (out_a, state_a), (out_b, state_b) = a, b
    torch.testing.assert_close(out_a, out_b)
    for x, y in zip(_tuple(state_a), _tuple(state_b), strict=True):
        torch.testing.assert_close(x, y)


def _same_exception(call_ref, call_ours):
    """Both raise, and rnnlab's exception is an instance of torch's class (and an RnnlabError)."""
    with pytest.raises(Exception) as torch_error:
        call_ref()
    with pytest.raises(torch_error.type) as ours_error:
        call_ours()
    assert isinstance(ours_error.value, RnnlabError), ours_error.value


# -- unbatched input -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("bidirectional,batch_first", [(False, False), (True, True)])
def test_unbatched_sequence_matches_torch(kind, impl, bidirectional, batch_first):
    ref, ours = _pair(kind, impl, num_layers=2, bidirectional=bidirectional,
                      batch_first=batch_first)
    x = torch.randn(5, 3)  # (T, I)
    state = _state(kind, 2 * (2 if bidirectional else 1), 4)  # (L*D, H)
    _assert_same(ours(x), ref(x))
    _assert_same(ours(x, state), ref(x, state))
    out, final = ours(x, state)
    assert out.shape == (5, 4 * (2 if bidirectional else 1))


@pytest.mark.parametrize("kind", KINDS)
def test_unbatched_input_with_batched_state_raises_like_torch(kind):
    ref, ours = _pair(kind)
    x, state = torch.randn(5, 3), _state(kind, 1, 1, 4)
    _same_exception(lambda: ref(x, state), lambda: ours(x, state))
    x, state = torch.randn(5, 1, 3), _state(kind, 1, 4)
    _same_exception(lambda: ref(x, state), lambda: ours(x, state))


@pytest.mark.parametrize("kind", ("LSTMCell", "GRUCell", "RNNCell"))
def test_unbatched_cell_input_matches_torch(kind):
    torch.manual_seed(0)
    ref = getattr(torch.nn, kind)(3, 4)
    ours = getattr(rn, kind)(3, 4)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(3)  # (I,)
    state = _state("LSTM" if kind == "LSTMCell" else kind, 4)  # (H,)
    for args in ((x,), (x, state)):
        for a, b in zip(_tuple(ours(*args)), _tuple(ref(*args)), strict=True):
            assert a.shape == b.shape == (4,)
            torch.testing.assert_close(a, b)


# -- empty batch, zero steps -----------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("batch_first", [False, True])
def test_empty_batch_returns_empty_outputs_like_torch(kind, impl, batch_first):
    ref, ours = _pair(kind, impl, num_layers=2, bidirectional=True, batch_first=batch_first)
    x = torch.randn(0, 5, 3) if batch_first else torch.randn(5, 0, 3)
    (out_ref, state_ref), (out, state) = ref(x), ours(x)
    assert out.shape == out_ref.shape
    for a, b in zip(_tuple(state), _tuple(state_ref), strict=True):
        assert a.shape == b.shape


@pytest.mark.parametrize("kind", KINDS)
def test_zero_steps_raise_like_torch(kind):
    ref, ours = _pair(kind)
    x = torch.randn(0, 2, 3)
    _same_exception(lambda: ref(x), lambda: ours(x))


# -- dropout ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_dropout_one_is_legal_and_zeroes_the_upper_layers_input(kind):
    ref, ours = _pair(kind, num_layers=2, dropout=1.0)
    x = torch.randn(5, 2, 3)
    ref.train(), ours.train()
    # With every input of layer 2 dropped, its output depends on its biases alone: same as torch.
    _assert_same(ours(x), ref(x))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dropout", [-0.1, 1.5, True, "0.3"])
def test_bad_dropout_raises_like_torch(kind, dropout):
    _same_exception(lambda: getattr(torch.nn, kind)(3, 4, num_layers=2, dropout=dropout),
                    lambda: getattr(rn, kind)(3, 4, num_layers=2, dropout=dropout))


@pytest.mark.parametrize("kind", KINDS)
def test_dropout_with_one_layer_warns_like_torch(kind):
    with pytest.warns(UserWarning) as torch_warning:
        getattr(torch.nn, kind)(3, 4, dropout=0.2)
    with pytest.warns(UserWarning) as ours_warning:
        getattr(rn, kind)(3, 4, dropout=0.2)
    assert str(ours_warning[0].message) == str(torch_warning[0].message)
    assert ours_warning[0].filename == __file__  # points at the caller, as torch's does
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        getattr(rn, kind)(3, 4, num_layers=2, dropout=0.2)


# -- cells check the state's shape -----------------------------------------------------------

@pytest.mark.parametrize("kind", ("LSTMCell", "GRUCell", "RNNCell"))
@pytest.mark.parametrize("bad", ["batch of one", "width one", "unbatched state"])
def test_cells_refuse_a_state_that_would_broadcast(kind, bad):
    ref, ours = getattr(torch.nn, kind)(3, 4), getattr(rn, kind)(3, 4)
    shape = {"batch of one": (1, 4), "width one": (3, 1), "unbatched state": (4,)}[bad]
    x = torch.randn(3, 3)
    if kind == "LSTMCell":  # a good h, the bad shape for c
        state = (torch.randn(3, 4), torch.randn(shape))
    else:
        state = torch.randn(shape)
    _same_exception(lambda: ref(x, state), lambda: ours(x, state))


@pytest.mark.parametrize("kind", ("LSTMCell", "GRUCell", "RNNCell"))
def test_cells_refuse_wrong_input_like_torch(kind):
    ref, ours = getattr(torch.nn, kind)(3, 4), getattr(rn, kind)(3, 4)
    for x in (torch.randn(2, 5), torch.randn(2, 2, 3)):
        _same_exception(lambda x=x: ref(x), lambda x=x: ours(x))


# -- constructor arguments -------------------------------------------------------------------

@pytest.mark.parametrize("kind", (*KINDS, "LSTMCell", "GRUCell", "RNNCell"))
def test_device_and_dtype_factory_arguments(kind):
    extra = {} if kind.endswith("Cell") else {"num_layers": 2, "bidirectional": True}
    ref = getattr(torch.nn, kind)(3, 4, dtype=torch.float64, device="cpu", **extra)
    ours = getattr(rn, kind)(3, 4, dtype=torch.float64, device="cpu", **extra)
    assert [(n, p.dtype, p.device) for n, p in ours.named_parameters()] == \
        [(n, p.dtype, p.device) for n, p in ref.named_parameters()]
    meta = getattr(rn, kind)(3, 4, device="meta", **extra)
    assert all(p.is_meta for p in meta.parameters())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("argument", ["bias", "batch_first"])
def test_non_bool_flags_raise_type_error_like_torch(kind, argument):
    with pytest.raises(TypeError):
        getattr(torch.nn, kind)(3, 4, **{argument: 1})
    with pytest.raises(TypeError, match=argument):
        getattr(rn, kind)(3, 4, **{argument: 1})


def test_proj_size_zero_is_accepted_and_positive_is_refused_clearly():
    assert rn.LSTM(3, 4, proj_size=0).proj_size == 0
    with pytest.raises(ValueError, match="proj_size=2.*torch.nn.LSTM"):
        rn.LSTM(3, 4, proj_size=2)


@pytest.mark.parametrize("kind,kwargs", [("LSTM", {}), ("GRU", {}), ("RNN", {}),
                                         ("RNN", {"nonlinearity": "relu"})])
def test_mode_and_all_weights_like_torch(kind, kwargs):
    ref, ours = _pair(kind, num_layers=2, bidirectional=True, **kwargs)
    assert ours.mode == ref.mode
    assert len(ours.all_weights) == len(ref.all_weights)
    for mine, theirs in zip(ours.all_weights, ref.all_weights, strict=True):
        assert len(mine) == len(theirs)
        for a, b in zip(mine, theirs, strict=True):
            assert torch.equal(a, b)
    no_bias = getattr(rn, kind)(3, 4, bias=False, **kwargs)
    assert [len(w) for w in no_bias.all_weights] == [2]


# -- forward arguments and exception classes --------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("impl", IMPLS)
def test_hx_keyword_like_torch(kind, impl):
    ref, ours = _pair(kind, impl, num_layers=2)
    x, state = torch.randn(5, 2, 3), _state(kind, 2, 2, 4)
    _assert_same(ours(x, hx=state), ref(x, hx=state))
    _assert_same(ours(x, state=state), ref(x, state))
    with pytest.raises(ValueError, match="not both"):
        ours(x, state, hx=state)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", ["hidden size", "batch of state", "layers of state",
                                  "feature size", "dtype"])
def test_exception_classes_like_torch(kind, case):
    ref, ours = _pair(kind, num_layers=2)
    x = torch.randn(5, 2, 3)
    state = {
        "hidden size": _state(kind, 2, 2, 5), "batch of state": _state(kind, 2, 3, 4),
        "layers of state": _state(kind, 1, 2, 4),
    }.get(case)
    if case == "feature size":
        x = torch.randn(5, 2, 6)
    if case == "dtype":
        x = x.double()
    _same_exception(lambda: ref(x, state), lambda: ours(x, state))


# -- parametrizations and pruning ------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("impl", IMPLS)
def test_orthogonal_parametrization_reaches_the_forward_pass(kind, impl):
    ref, ours = _pair(kind, impl, num_layers=2)
    parametrizations.orthogonal(ours, "weight_hh_l0")
    w = ours.weight_hh_l0  # (G*H, H), tall: orthonormal columns
    torch.testing.assert_close(w.t() @ w, torch.eye(4), atol=1e-5, rtol=0)
    with torch.no_grad():
        ref.weight_hh_l0.copy_(w)
    x = torch.randn(5, 2, 3)
    _assert_same(ours(x), ref(x))
    ours(x)[0].sum().backward()
    original = ours.parametrizations.weight_hh_l0.original
    assert original.grad is not None and original.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("impl", IMPLS)
def test_pruning_reaches_the_forward_pass(kind, impl):
    ref, ours = _pair(kind, impl, num_layers=2)
    x = torch.randn(5, 2, 3)
    before = ours(x)[0].detach()
    prune.l1_unstructured(ours, "weight_hh_l1", amount=0.5)
    prune.random_unstructured(ours, "weight_ih_l0", amount=0.5)
    with torch.no_grad():
        ref.weight_hh_l1.copy_(ours.weight_hh_l1)
        ref.weight_ih_l0.copy_(ours.weight_ih_l0)
    after = ours(x)
    _assert_same(after, ref(x))
    assert not torch.allclose(after[0], before)
    after[0].sum().backward()
    assert (ours.weight_hh_l1_orig.grad[ours.weight_hh_l1_mask == 0] == 0).all()
    prune.remove(ours, "weight_hh_l1")
    assert "weight_hh_l1" in dict(ours.named_parameters())
