"""Greedy decoding over any model's `step(tokens, state) -> (logits, state)`, batched.

At each position every sentence takes its single most probable next token. The state is carried
from step to step, so the prefix is read once. When the state is a dict with a "weights" entry
(B, S) (the translation decoder's attention), the weights of every produced token are returned
too, for alignment plots.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

StepFn = Callable[[Tensor, Any], tuple[Tensor, Any]]


@dataclass
class Hypothesis:
    tokens: list[int]  # the output, without <bos> and without the closing <eos>
    score: float  # sum of the natural-log probabilities of the tokens and of the closing <eos>
    weights: Tensor | None = None  # (len(tokens) + 1, S): attention of each step, <eos>'s last
    # beam search with n_best > 1: the runners-up, best first (each without alternatives)
    alternatives: list[Hypothesis] = field(default_factory=list)


def attention_weights(state: Any) -> Tensor | None:
    """The attention weights a step left in its state, if it exposes any (dict key "weights")."""
    return state.get("weights") if isinstance(state, dict) else None


@torch.no_grad()
def greedy_search(step: StepFn, state: Any, bos_id: int, eos_id: int,
                  max_lengths: Tensor) -> list[Hypothesis]:
    """Decode max_lengths.numel() sentences at once; sentence b stops at <eos> or after
    max_lengths[b] tokens (the last one is then forced to be <eos>, so every output ends)."""
    batch = max_lengths.numel()
    device = max_lengths.device
    tokens = torch.full((batch,), bos_id, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    scores = torch.zeros(batch, device=device)
    outputs, weights = [], []
    for t in range(int(max_lengths.max())):
        logits, state = step(tokens, state)
        log_probs = torch.log_softmax(logits.float(), dim=-1)  # (B, V)
        tokens = log_probs.argmax(dim=-1)  # (B,)
        tokens = torch.where(t + 1 >= max_lengths, torch.full_like(tokens, eos_id), tokens)
        gained = log_probs.gather(1, tokens[:, None]).squeeze(1)  # (B,)
        scores = scores + torch.where(finished, torch.zeros_like(gained), gained)
        outputs.append(torch.where(finished, torch.full_like(tokens, eos_id), tokens))
        step_weights = attention_weights(state)
        if step_weights is not None:
            weights.append(step_weights)
        finished = finished | (tokens == eos_id)
        if bool(finished.all()):
            break
    produced = torch.stack(outputs, dim=1).tolist()  # (B, T)
    stacked = torch.stack(weights, dim=1) if weights else None  # (B, T, S)
    hypotheses = []
    for b, row in enumerate(produced):
        length = row.index(eos_id)
        hypotheses.append(Hypothesis(
            row[:length], float(scores[b]),
            None if stacked is None else stacked[b, : length + 1].cpu(),
        ))
    return hypotheses
