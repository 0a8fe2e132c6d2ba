"""What every translation model shares besides its network: the teacher-forced loss, and
decoding (greedy or beam search) through its `encode` and `step` alone.

A model that mixes this in provides
    encode(src, lengths) -> state            the decoder's starting state
    step(tokens, state) -> (logits, state)   one target token per sentence
    forward(src, lengths, tgt_in) -> logits  every target position at once (teacher forcing)
and, when its state keeps the batch off dim 0, its own `reorder_state` for beam search.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from rnnlab.decoding.beam import select_batch
from rnnlab.decoding.greedy import Hypothesis


class Translator:
    pad_id: int
    config: Any  # TranslateConfig
    max_output_length: int | None = None  # the longest output the model can represent

    reorder_state = staticmethod(select_batch)

    def loss(self, src: Tensor, lengths: Tensor, tgt_in: Tensor, tgt_out: Tensor,
             label_smoothing: float | None = None) -> tuple[Tensor, int]:
        """Mean (label-smoothed) cross-entropy over the real target tokens, and their count."""
        real = tgt_out != self.pad_id  # (B, T)
        logits = self(src, lengths, tgt_in)[real]  # (N, V)
        smoothing = self.config.label_smoothing if label_smoothing is None else label_smoothing
        loss = F.cross_entropy(logits, tgt_out[real], label_smoothing=smoothing)
        return loss, int(real.sum())

    @torch.no_grad()
    def translate(self, src: Tensor, lengths: Tensor, bos_id: int, eos_id: int, *,
                  beam: int = 1, alpha: float = 0.0, max_len_ratio: float = 2.0,
                  max_len_extra: int = 10, n_best: int = 1) -> list[Hypothesis]:
        """Greedy (beam 1) or beam search; outputs stop at ratio * source length + extra;
        with n_best > 1 each hypothesis carries its runners-up (`alternatives`)."""
        from rnnlab.decoding.beam import beam_search
        from rnnlab.decoding.greedy import greedy_search

        state = self.encode(src, lengths)
        max_lengths = (lengths.float() * max_len_ratio).long().to(src.device) + max_len_extra
        if self.max_output_length is not None:
            max_lengths = max_lengths.clamp(max=self.max_output_length)
        if beam == 1:
            return greedy_search(self.step, state, bos_id, eos_id, max_lengths)
        return beam_search(self.step, state, bos_id, eos_id, max_lengths, beam=beam,
                           alpha=alpha, reorder=self.reorder_state, n_best=n_best)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
