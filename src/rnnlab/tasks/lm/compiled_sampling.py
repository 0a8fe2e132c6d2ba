"""Sampling from a recurrent LM with the token loop compiled (`nn/csrc/generate.cpp`).

`decoding.sampling.sample` steps any model from Python; for a small recurrent LM the tensor
operations of one step (lookup, per-layer products and activations, decoder, softmax, draw)
cost more in dispatch than in arithmetic. This module hands the whole loop to C++ in chunks of
tokens, so text still streams, and draws with the same rule (inverse CDF of
softmax(logits / temperature), one uniform number per token from the same generator, banned
tokens never): the same distribution, and for a seed the same text up to rounding. Top-k and
top-p filtering, GPU models and the Transformer LM take the Python path.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from rnnlab.config import check_value
from rnnlab.nn import native
from rnnlab.nn.recurrent import GRU, LSTM, RNN
from rnnlab.tasks.lm.model import LanguageModel

# Tokens per call into C++: 1, 2, 4, ... up to CHUNK, so the first token streams at once and
# later calls amortize their cost (32 tokens: a few ms of a small model).
CHUNK = 32


def cell_kind(rnn: torch.nn.Module) -> str | None:
    """generate.cpp's name for the layer's cell, or None when it has no compiled step."""
    if isinstance(rnn, LSTM):
        return "lstm"
    if isinstance(rnn, GRU):
        return "gru" if rnn.variant == "full" else "gru_minimal"
    if isinstance(rnn, RNN):
        return f"rnn_{rnn.nonlinearity}"
    return None


def compiled_sampler(model: object, *, top_k: int = 0,
                     top_p: float = 1.0) -> CompiledSampler | None:
    """A compiled sampler for `model` (a recurrent LanguageModel in eval mode on the CPU, no
    top-k/top-p filtering), or None: then `decoding.sampling.sample` does the job."""
    if top_k or top_p < 1.0 or not isinstance(model, LanguageModel) or model.training:
        return None
    rnn = model.rnn
    if cell_kind(rnn) is None or rnn.bidirectional or rnn.batch_first:
        return None
    extension = native.extension_for(model.decoder.weight)
    return None if extension is None else CompiledSampler(model, extension)


class CompiledSampler:
    """`sample(prime, length, ...)` for one model, with its weights arranged once for C++."""

    def __init__(self, model: LanguageModel, extension) -> None:  # noqa: ANN001
        self.model, self.extension = model, extension
        rnn = model.rnn
        self.cell = cell_kind(rnn)
        self.layers: list[list[Tensor]] = []
        empty = model.decoder.weight.new_empty(0)
        with torch.no_grad():
            for layer in range(rnn.num_layers):
                suffix = f"_l{layer}"
                w_ih, w_hh, b_ih, b_hh = rnn._weights(suffix)
                peep = rnn._peepholes(suffix)
                peep = torch.stack(peep) if peep is not None else empty
                if layer == 0:  # the input product comes from the model's lookup table
                    parts = [empty, empty, w_hh, b_hh, peep]
                elif self.cell != "gru":  # the pre-activation is one sum: one product
                    bias = b_ih + b_hh if b_ih is not None else empty
                    parts = [torch.cat([w_ih, w_hh], dim=1), bias, empty, empty, peep]
                else:  # the full GRU multiplies W_hn h by r: two products
                    parts = [w_ih, b_ih, w_hh, b_hh, peep]
                self.layers.append([_or(p, empty).detach().contiguous() for p in parts])
            self.head: list[Tensor] = []
            for linear in (model.projection, model.decoder):
                if linear is not None:
                    self.head += [linear.weight.detach().contiguous(),
                                  _or(linear.bias, empty).detach().contiguous()]
            self.table = model.rnn.input_table(model.embedding.weight)

    @torch.no_grad()
    def sample(self, prime: Sequence[int], length: int, *, temperature: float = 1.0,
               greedy: bool = False, num_samples: int = 1, banned: Sequence[int] = (),
               generator: torch.Generator | None = None) -> Iterator[Tensor]:
        """Yield `length` tensors of token ids (num_samples,), as `decoding.sampling.sample`."""
        if not prime:
            raise ValueError("sampling needs at least one priming token")
        check_value("temperature", temperature, float, gt=0.0)
        prime_ids = torch.tensor(list(prime), dtype=torch.long).unsqueeze(1)  # (T, 1)
        logits, state = self.model(prime_ids.expand(-1, num_samples))  # read once
        logits = logits[-1]  # (B, V)
        states = state if isinstance(state, tuple) else (state,)
        h_states = [s.contiguous() for s in states[0].unbind(0)]
        c_states = [s.contiguous() for s in states[1].unbind(0)] if len(states) == 2 else []
        ban = torch.zeros(logits.shape[-1], dtype=torch.bool)
        ban[list(banned)] = True
        done, chunk = 0, 1
        while done < length:
            count = min(chunk, length - done)
            chunk = min(2 * chunk, CHUNK)
            uniforms = (torch.empty(0, num_samples, dtype=torch.float64) if greedy else
                        torch.rand(count, num_samples, generator=generator))
            tokens, logits = self.extension.generate(
                self.cell, logits, self.table, self.layers, h_states, c_states, self.head,
                uniforms, count, float(temperature), greedy, ban, done + count < length)
            yield from tokens.unbind(0)
            done += count


def _or(x: Tensor | None, default: Tensor) -> Tensor:
    return default if x is None else x
