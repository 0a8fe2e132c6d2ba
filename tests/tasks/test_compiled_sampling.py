"""The compiled sampling loop (tasks/lm/compiled_sampling.py + nn/csrc/generate.cpp) against
the Python one (decoding.sampling.sample over LanguageModel.step), the oracle: in float64 the
two draw the very same tokens from the same seed, for every cell, depth, head and option."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.decoding.sampling import sample
from rnnlab.errors import RnnlabError
from rnnlab.nn import native
from rnnlab.nn.factory import CELLS
from rnnlab.tasks.lm import compiled_sampling
from rnnlab.tasks.lm.compiled_sampling import compiled_sampler
from rnnlab.tasks.lm.config import LMConfig
from rnnlab.tasks.lm.model import LanguageModel

pytestmark = pytest.mark.skipif(
    os.environ.get("RNNLAB_REQUIRE_NATIVE") != "1" and not native.available(),
    reason="the C++ recurrences could not be built here")

VOCAB = 23


def make_lm(cell: str, layers: int, hidden: int, embed: int, tie: bool,
            dtype: torch.dtype = torch.float64) -> LanguageModel:
    torch.manual_seed(layers * 100 + hidden)
    config = LMConfig(cell=cell, embedding_size=embed, hidden=hidden, layers=layers,
                      dropout=0.0, dropout_output=0.0, tie_weights=tie)
    model = LanguageModel(VOCAB, config).to(dtype).eval()
    with torch.no_grad():  # larger weights than the init: peaked, varied distributions
        for parameter in model.parameters():
            parameter.mul_(3.0)
    return model


def both(model, prime, length, seed, **options):
    generator = torch.Generator().manual_seed(seed)
    want = list(sample(model.step, prime, length, generator=generator, **options))
    compiled = compiled_sampler(model)
    assert compiled is not None
    generator = torch.Generator().manual_seed(seed)
    got = list(compiled.sample(prime, length, generator=generator, **options))
    return torch.stack(got), torch.stack(want)


@settings(max_examples=40, deadline=None)
@given(cell=st.sampled_from(CELLS), layers=st.integers(1, 3), hidden=st.integers(1, 13),
       embed=st.integers(1, 9), tie=st.booleans(), num_samples=st.integers(1, 3),
       length=st.integers(1, 30), greedy=st.booleans(),
       temperature=st.sampled_from([0.3, 1.0, 1.7]), chunk=st.integers(1, 8),
       prime=st.lists(st.integers(0, VOCAB - 1), min_size=1, max_size=4))
def test_same_tokens_as_python_loop_float64(cell, layers, hidden, embed, tie, num_samples,
                                            length, greedy, temperature, chunk, prime):
    """Chunks as small as one token: the state and logits carry across calls into C++."""
    model = make_lm(cell, layers, hidden, embed, tie)
    original, compiled_sampling.CHUNK = compiled_sampling.CHUNK, chunk
    try:
        got, want = both(model, prime, length, seed=7, temperature=temperature, greedy=greedy,
                         num_samples=num_samples, banned=(0, 2))
    finally:
        compiled_sampling.CHUNK = original
    assert got.shape == (length, num_samples)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert not ({0, 2} & set(got.flatten().tolist()))


@pytest.mark.parametrize("cell", CELLS)
def test_float32_logits_match_the_python_step(cell):
    """In float32 the products sum in another order: the logits agree to rounding."""
    model = make_lm(cell, 2, 40, 16, tie=False, dtype=torch.float32)
    compiled = compiled_sampler(model)
    prime = [1, 5, 3]
    with torch.no_grad():
        logits, state = model(torch.tensor(prime).unsqueeze(1))
    states = state if isinstance(state, tuple) else (state,)
    h = [s.clone() for s in states[0].unbind(0)]  # C++ updates them in place
    c = [s.clone() for s in states[1].unbind(0)] if len(states) == 2 else []
    tokens, got = compiled.extension.generate(
        compiled.cell, logits[-1], compiled.table, compiled.layers, h, c, compiled.head,
        torch.empty(0, 1), 12, 1.0, True, torch.empty(0), True)
    want, py_state = logits[-1], state
    for token in tokens[:, 0].tolist():  # the same greedy tokens through LanguageModel.step
        assert token == int(want.argmax())
        want, py_state = model.step(torch.tensor([token]), py_state)
    torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-5)


def test_falls_back_where_it_does_not_apply():
    model = make_lm("lstm", 1, 8, 4, tie=False)
    assert compiled_sampler(model) is not None
    assert compiled_sampler(model, top_k=5) is None  # filters: the Python path
    assert compiled_sampler(model, top_p=0.9) is None
    assert compiled_sampler(model.train()) is None  # training mode: dropout would apply
    model.eval()
    with native.use_native(False):
        assert compiled_sampler(model) is None
    assert compiled_sampler(object()) is None  # an n-gram model or a Transformer LM


def test_bad_input_gets_a_clear_error():
    model = make_lm("gru", 2, 8, 4, tie=False)
    compiled = compiled_sampler(model)
    with pytest.raises(ValueError, match="priming token"):
        next(compiled.sample([], 5))
    with pytest.raises(RnnlabError, match="temperature"):
        next(compiled.sample([1], 5, temperature=0.0))
    with torch.no_grad():
        model.decoder.bias.fill_(float("nan"))
    with pytest.raises(RuntimeError, match="not finite"):
        next(compiled_sampler(model).sample([1], 5))
