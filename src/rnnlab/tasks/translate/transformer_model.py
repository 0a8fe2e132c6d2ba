"""The encoder-decoder Transformer for translation (Vaswani et al. 2017, sec. 3), built from
rnnlab.nn.transformer's stacks, behind the translation model interface (`encode`, `step`,
`forward`, `loss`, `translate`).

    source ids (B, S) --embed · √d + PE, dropout--> encoder stack (lengths) --> memory (B, S, d)
    target ids (B, T) --embed · √d + PE, dropout--> decoder stack (causal self-attention,
        attention over the memory) --> (B, T, d) --W_out--> logits (B, T, V)

As the paper (sec. 3.4) and fairseq: embeddings N(0, d^-1/2) scaled by √d, so that they and the
sinusoids have comparable size; with --tie-embeddings the output layer is the target embedding.

The decoding state is the decoder's key/value cache (every tensor batch-first, so beam search's
default `select_batch` follows the beams):
    cache       [{k, v, memory_k, memory_v (, memory_mask)}] * layers
    memory      (B, S, d) until the first step has projected it into the cache, then None
    lengths     (B,) source lengths (the memory mask)
    weights     (B, S) the last step's attention over the source in `attention_layer`,
                heads averaged
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from rnnlab.nn.positions import make_positions
from rnnlab.nn.transformer import TransformerDecoder, TransformerEncoder, cache_length, new_cache
from rnnlab.tasks.translate.config import TranslateConfig
from rnnlab.tasks.translate.translator import Translator

State = dict[str, Any]


class TransformerSeq2Seq(Translator, nn.Module):
    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, config: TranslateConfig,
                 pad_id: int = 0) -> None:
        super().__init__()
        self.config, self.pad_id = config, pad_id
        d = config.hidden
        self.scale = math.sqrt(d)
        self.src_embedding = self._embedding(src_vocab_size, d, pad_id)
        self.tgt_embedding = self._embedding(tgt_vocab_size, d, pad_id)
        self.positions = make_positions(config.positions, d, config.max_positions)
        self.dropout = nn.Dropout(config.dropout)
        stack = dict(num_layers=config.layers, d_model=d, nhead=config.heads,
                     dim_feedforward=config.ff or 4 * d, dropout=config.dropout,
                     activation=config.activation, norm_first=config.norm_first,
                     bias=config.bias)
        self.encoder = TransformerEncoder(**stack)
        self.decoder = TransformerDecoder(**stack)
        self.output = nn.Linear(d, tgt_vocab_size)  # W_out
        self.tied_parameter_names: tuple[str, ...] = ()
        if config.tie_embeddings:
            self.output.weight = self.tgt_embedding.weight
            self.tied_parameter_names = ("output.weight",)
        if config.positions == "learned":
            self.max_output_length = config.max_positions
        self.attention_layer = -1  # the layer whose attention `step` reports (plots)

    @staticmethod
    def _embedding(num: int, d: int, pad_id: int) -> nn.Embedding:
        table = nn.Embedding(num, d, padding_idx=pad_id)
        nn.init.normal_(table.weight, std=d ** -0.5)
        nn.init.zeros_(table.weight[pad_id])
        return table

    def _embed(self, table: nn.Embedding, ids: Tensor, offset: int = 0) -> Tensor:
        """ids (B, L) at positions offset.. -> dropout(E[ids] · √d + PE) (B, L, d)."""
        return self.dropout(table(ids) * self.scale + self.positions(ids.shape[1], offset))

    def _memory(self, src: Tensor, lengths: Tensor) -> Tensor:
        return self.encoder(self._embed(self.src_embedding, src), lengths)[0]  # (B, S, d)

    def encode(self, src: Tensor, lengths: Tensor) -> State:
        lengths = lengths.to(src.device)
        return {"cache": new_cache(self.config.layers), "memory": self._memory(src, lengths),
                "lengths": lengths, "weights": None}

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """tokens (B,) -> logits (B, V): one position through the decoder, keys and values of
        the earlier ones read from the cache (which the new state extends; the old is kept)."""
        cache = [dict(layer) for layer in state["cache"]]
        y = self._embed(self.tgt_embedding, tokens[:, None], cache_length(cache))  # (B, 1, d)
        out, weights = self.decoder(y, state["memory"], state["lengths"], cache=cache,
                                    need_weights=True)  # (B, 1, d), [(B, H, 1, S)] * layers
        step_weights = weights[self.attention_layer][:, :, 0].mean(dim=1)  # (B, S)
        new = {**state, "cache": cache, "memory": None, "weights": step_weights}
        return self.output(out[:, 0]), new

    def forward(self, src: Tensor, lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Logits (B, T, V) of every target position given the gold previous tokens."""
        lengths = lengths.to(src.device)
        y = self._embed(self.tgt_embedding, tgt_in)  # (B, T, d)
        out, _ = self.decoder(y, self._memory(src, lengths), lengths)  # (B, T, d)
        return self.output(out)

    @torch.no_grad()
    def cross_attention(self, src: Tensor, lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Every decoder layer's attention over the source, (layers, B, heads, T, S)."""
        lengths = lengths.to(src.device)
        y = self._embed(self.tgt_embedding, tgt_in)
        _, weights = self.decoder(y, self._memory(src, lengths), lengths, need_weights=True)
        return torch.stack(weights)
