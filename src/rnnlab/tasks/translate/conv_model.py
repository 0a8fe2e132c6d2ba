"""ConvS2S for translation (Gehring et al. 2017): rnnlab.nn.conv's encoder and decoder behind
the translation model interface (`encode`, `step`, `forward`, `loss`, `translate`).

The decoding state is a dict with the batch on dim 0 everywhere, so the beam search's default
`select_batch` follows the beams:
    keys, values (B, S, E), mask (B, S)   the encoder's output, fixed
    histories   [(B, k-1, C)] * layers   each decoder layer's last k-1 inputs (None at first)
    position    (B,)                     the position of the next target token
    weights     (B, S)                   the attention of the last step in `attention_layer`
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from rnnlab.nn.conv import ConvDecoder, ConvEncoder
from rnnlab.tasks.translate.config import TranslateConfig
from rnnlab.tasks.translate.translator import Translator

State = dict[str, Any]


class ConvSeq2Seq(Translator, nn.Module):
    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, config: TranslateConfig,
                 pad_id: int = 0) -> None:
        super().__init__()
        self.config, self.pad_id = config, pad_id
        shape = dict(embedding=config.embedding, channels=config.hidden, layers=config.layers,
                     kernel=config.kernel, dropout=config.dropout,
                     max_positions=config.max_positions, pad_id=pad_id)
        self.encoder = ConvEncoder(src_vocab_size, **shape)
        self.decoder = ConvDecoder(tgt_vocab_size, **shape)
        self.tied_parameter_names: tuple[str, ...] = ()
        if config.tie_embeddings:
            self.decoder.output.weight = self.decoder.embed.tokens.weight
            self.tied_parameter_names = ("decoder.output.weight",)
        self.max_output_length = config.max_positions
        self.attention_layer = -1  # the layer whose attention `step` reports (plots)

    def encode(self, src: Tensor, lengths: Tensor) -> State:
        keys, values, mask = self.encoder(src, lengths)  # (B, S, E) twice, (B, S)
        position = torch.zeros(src.shape[0], dtype=torch.long, device=src.device)
        return {"keys": keys, "values": values, "mask": mask, "histories": None,
                "position": position, "weights": None}

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """tokens (B,) -> logits (B, V): one position of every decoder layer, from its history."""
        logits, attention, histories = self.decoder(
            tokens[:, None], state["keys"], state["values"], state["mask"],
            state["histories"], state["position"])  # (B, 1, V)
        return logits[:, 0], {**state, "histories": histories, "position": state["position"] + 1,
                              "weights": attention[self.attention_layer][:, 0]}

    def forward(self, src: Tensor, lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Logits (B, T, V) of every target position given the gold previous tokens."""
        keys, values, mask = self.encoder(src, lengths)
        return self.decoder(tgt_in, keys, values, mask)[0]

    @torch.no_grad()
    def cross_attention(self, src: Tensor, lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Every decoder layer's attention over the source, (layers, B, heads=1, T, S)."""
        keys, values, mask = self.encoder(src, lengths)
        attention = self.decoder(tgt_in, keys, values, mask)[1]  # [(B, T, S)] * layers
        return torch.stack(attention)[:, :, None]
