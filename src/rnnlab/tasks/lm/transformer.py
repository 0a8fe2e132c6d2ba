"""A GPT-style language model (Radford et al. 2018/2019; nanoGPT): token + position embeddings,
a stack of causal Transformer blocks (pre-LN, ending in a LayerNorm, by default), and a decoder
tied to the embedding (with --tie-weights).

It models p(w_t | w_{t-B+1} .. w_<t) with a window of B = `block_size` tokens in place of the
recurrent state: every position attends to all earlier ones in the window at once, so a
training window is one parallel pass (no time loop), but the context ends at B tokens.

It speaks the recurrent model's interface, so the LM task, sampling and scoring use it
unchanged: `forward(tokens (T, B), state)` with T <= block_size (time-first, as the recurrent
LM; `state` is accepted and None is returned: windows do not carry one), `loss`, and
`step(tokens (B,), state)` for generation, whose state is the key/value cache plus the tokens
of the window (see `step`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnlab.nn.positions import make_positions
from rnnlab.nn.transformer import cache_length, new_cache
from rnnlab.tasks.lm.config import LMConfig
from rnnlab.tasks.transformer_options import gpt_init_, make_transformer_encoder


class TransformerLM(nn.Module):
    decay_matrices_only = True  # AdamW's weight decay spares biases and LayerNorms (GPT-2)

    def __init__(self, vocab_size: int, config: LMConfig) -> None:
        super().__init__()
        self.config = config
        width = config.hidden
        self.context_length = config.block_size
        self.embedding = nn.Embedding(vocab_size, width)
        self.positions = make_positions(config.positions, width, config.block_size)
        # sinusoids have amplitude 1: the paper scales the embeddings by √d to match (sec. 3.4)
        self.scale = math.sqrt(width) if config.positions == "sinusoidal" else 1.0
        self.dropout_embedding = nn.Dropout(config.dropout_embedding)
        self.blocks = make_transformer_encoder(config, width, config.layers, config.dropout)
        self.dropout_output = nn.Dropout(config.dropout_output)
        self.decoder = nn.Linear(width, vocab_size, bias=False)
        gpt_init_(self, config.layers)
        self.tied_parameter_names: tuple[str, ...] = ()
        if config.tie_weights:  # Press & Wolf 2017, as GPT-2
            self.decoder.weight = self.embedding.weight
            self.tied_parameter_names = ("decoder.weight",)

    def _embed(self, tokens: Tensor, offset: int = 0) -> Tensor:
        """(B, T) -> (B, T, E): token embedding (scaled) + the positions offset .. offset+T-1."""
        x = self.embedding(tokens) * self.scale + self.positions(tokens.shape[1], offset)
        return self.dropout_embedding(x)

    def _decode(self, h: Tensor) -> Tensor:
        return self.decoder(self.dropout_output(h))  # (..., V); pre-LN stacks end in a LayerNorm

    def forward(self, tokens: Tensor, state: Any = None) -> tuple[Tensor, None]:
        """tokens (T, B) with T <= block_size -> logits (T, B, V); each window stands alone."""
        steps = tokens.shape[0]
        if steps > self.context_length:
            raise ValueError(f"a window of {steps} tokens is longer than the model's context "
                             f"({self.context_length}, --block-size)")
        h, _ = self.blocks(self._embed(tokens.t()), causal=True)  # (B, T, E)
        return self._decode(h).transpose(0, 1), None  # (T, B, V)

    def loss(self, tokens: Tensor, targets: Tensor, state: Any = None) -> tuple[Tensor, None]:
        """Mean cross-entropy (nats per token) of targets (T, B) given tokens (T, B)."""
        logits, _ = self(tokens)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)), None

    @torch.no_grad()
    def step(self, tokens: Tensor, state: dict | None = None) -> tuple[Tensor, dict]:
        """One token for generation: tokens (B,) -> logits (B, V) and the new state.

        The state is {"tokens": the window so far (B, t), "layers": the key/value cache}: a
        step reads only the new token. Once the window would pass `block_size`, it is cropped
        to its last `block_size` tokens and read afresh (nanoGPT's generate crops the same
        way), since learned positions stop at the context length and cached keys carry the
        positions they were computed at.
        """
        new = tokens[:, None]  # (B, 1)
        if state is None:
            window, cache = new, new_cache(len(self.blocks.layers))
        else:
            window = torch.cat([state["tokens"], new], dim=1)  # (B, t + 1)
            cache = [dict(layer) for layer in state["layers"]]  # the caller's state stays as is
            if window.shape[1] > self.context_length:
                window = window[:, -self.context_length :]
                new, cache = window, new_cache(len(self.blocks.layers))
        h, _ = self.blocks(self._embed(new, cache_length(cache)), causal=True, cache=cache)
        return self._decode(h[:, -1]), {"tokens": window, "layers": cache}  # (B, V)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
