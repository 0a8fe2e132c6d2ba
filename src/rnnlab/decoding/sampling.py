"""Sampling novel text one token at a time (one-to-many), over any model's `step`.

`step(tokens (B,), state) -> (logits (B, V), state)` is the only thing asked of a model, so the
same code samples from a neural LM, an n-gram model, or a translation decoder. The state is
carried: the prefix is read once, never re-run for each new token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor

StepFn = Callable[[Tensor, object], tuple[Tensor, object]]


def filter_logits(logits: Tensor, temperature: float = 1.0, top_k: int = 0,
                  top_p: float = 1.0) -> Tensor:
    """Temperature, then keep the k most likely (top-k), then the smallest set whose
    probability reaches p (nucleus, Holtzman et al. 2020); the rest get -inf."""
    if temperature <= 0:
        raise ValueError("temperature must be > 0 (use greedy decoding for argmax)")
    logits = logits / temperature  # (B, V)
    if top_k and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
        # drop a token when the tokens before it already reach p (the first is always kept)
        drop_sorted = (cumulative - torch.softmax(sorted_logits, dim=-1)) >= top_p
        drop = drop_sorted.scatter(1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


@torch.no_grad()
def sample(step: StepFn, prime: Sequence[int], length: int, *, temperature: float = 1.0,
           top_k: int = 0, top_p: float = 1.0, greedy: bool = False, num_samples: int = 1,
           banned: Sequence[int] = (), generator: torch.Generator | None = None,
           device: torch.device | str = "cpu") -> Iterator[Tensor]:
    """Yield `length` tensors of next-token ids (num_samples,), each drawn after the last.

    `prime` (at least one id) is read first; `banned` ids (e.g. <pad>, <bos>) are never drawn.
    """
    if not prime:
        raise ValueError("sampling needs at least one priming token")
    state = None
    logits = None
    for token in prime:
        tokens = torch.full((num_samples,), token, dtype=torch.long, device=device)
        logits, state = step(tokens, state)
    for position in range(length):
        logits = logits.float()
        if banned:
            logits[:, list(banned)] = float("-inf")
        if greedy:
            tokens = logits.argmax(dim=-1)
        else:
            probs = torch.softmax(filter_logits(logits, temperature, top_k, top_p), dim=-1)
            tokens = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1)
            tokens = tokens.to(logits.device)
        yield tokens
        if position + 1 < length:
            logits, state = step(tokens, state)
