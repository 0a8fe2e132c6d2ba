"""The recurrent language model: embedding -> rnnlab RNN/LSTM/GRU -> linear decoder.

It models p(w_t | w_<t) with a recurrent state in place of the n-gram's fixed context, so the
probability of a sequence is the product of one softmax per step (Mikolov et al. 2010).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnlab.nn.factory import make_recurrent
from rnnlab.tasks.lm.config import LMConfig


class LanguageModel(nn.Module):
    context_length: int | None = None  # a recurrent state has no limit on what it has read

    def __init__(self, vocab_size: int, config: LMConfig) -> None:
        super().__init__()
        self.config = config
        embedding_size = config.embedding_size or config.hidden
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.dropout_embedding = nn.Dropout(config.dropout_embedding)
        self.rnn = make_recurrent(
            config.cell, embedding_size, config.hidden, config.layers, dropout=config.dropout,
            forget_bias=config.forget_bias, impl=config.impl,
        )
        self.dropout_output = nn.Dropout(config.dropout_output)
        # With tied weights the decoder reads vectors of the embedding's size (Press & Wolf 2017;
        # Inan et al. 2017); when the hidden size differs, a linear map bridges the two.
        decoder_input = embedding_size if config.tie_weights else config.hidden
        self.projection = (
            nn.Linear(config.hidden, embedding_size)
            if config.tie_weights and embedding_size != config.hidden else None
        )
        self.decoder = nn.Linear(decoder_input, vocab_size)
        self.tied_parameter_names: tuple[str, ...] = ()
        if config.tie_weights:
            self.decoder.weight = self.embedding.weight
            self.tied_parameter_names = ("decoder.weight",)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        if config.init_range:
            for parameter in self.parameters():
                nn.init.uniform_(parameter, -config.init_range, config.init_range)

    def forward(self, tokens: Tensor, state=None) -> tuple[Tensor, object]:  # noqa: ANN001
        """tokens (T, B) -> logits (T, B, V) and the final recurrent state."""
        x = self.dropout_embedding(self.embedding(tokens))  # (T, B, E)
        out, state = self.rnn(x, state)  # (T, B, H)
        return self._decode(out), state

    def _decode(self, out: Tensor) -> Tensor:
        out = self.dropout_output(out)
        if self.projection is not None:
            out = self.projection(out)  # (..., E)
        return self.decoder(out)  # (..., V)

    def loss(self, tokens: Tensor, targets: Tensor, state=None) -> tuple[Tensor, object]:  # noqa: ANN001
        """Mean cross-entropy (nats per token) of predicting targets (T, B) from tokens (T, B)."""
        logits, state = self(tokens, state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return loss, state

    @torch.no_grad()
    def step(self, tokens: Tensor, state=None) -> tuple[Tensor, object]:  # noqa: ANN001
        """One step for generation: tokens (B,) -> logits (B, V), never re-reading the prefix.

        In eval mode the embedding and the first layer's input projection are folded into one
        (V, G*H) table, so a step starts with a row lookup instead of two matrix products.
        """
        if self.training:
            out, state = self.rnn.step(self.embedding(tokens), state)  # (B, H)
        else:
            table = self.rnn.input_table(self.embedding.weight)  # (V, G*H)
            out, state = self.rnn.step(None, state, x_proj=F.embedding(tokens, table))
        return self._decode(out), state

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def build_lm(vocab_size: int, config: LMConfig) -> nn.Module:
    """The model `config.model` names: recurrent (`LanguageModel`) or GPT (`TransformerLM`)."""
    if config.model == "transformer":
        from rnnlab.tasks.lm.transformer import TransformerLM

        return TransformerLM(vocab_size, config)
    return LanguageModel(vocab_size, config)
