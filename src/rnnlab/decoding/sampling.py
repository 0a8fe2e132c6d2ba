"""Sampling novel text one token at a time (one-to-many), over any model's `step`.

`step(tokens (B,), state) -> (logits (B, V), state)` is the only thing asked of a model, so the
same code samples from a neural LM, an n-gram model, or a translation decoder. The state is
carried: the prefix is read once, never re-run for each new token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor

from rnnlab.config import check_value

StepFn = Callable[[Tensor, object], tuple[Tensor, object]]


def filter_logits(logits: Tensor, temperature: float = 1.0, top_k: int = 0,
                  top_p: float = 1.0) -> Tensor:
    """Temperature, then keep the k most likely (top-k), then the smallest set whose
    probability reaches p (nucleus, Holtzman et al. 2020); the rest get -inf."""
    check_value("temperature", temperature, float, gt=0.0)  # argmax is greedy decoding
    check_value("top_k", top_k, int, ge=0)
    check_value("top_p", top_p, float, gt=0.0, le=1.0)  # 0 would keep no token at all
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
    ban = None
    if banned:
        ban = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
        ban[list(banned)] = True
    for position in range(length):
        logits = logits.float()
        if ban is not None:
            logits = logits.masked_fill(ban, float("-inf"))
        if greedy:
            tokens = logits.argmax(dim=-1)
        else:
            probs = torch.softmax(filter_logits(logits, temperature, top_k, top_p), dim=-1)
            tokens = draw(probs, generator)
        yield tokens
        if position + 1 < length:
            logits, state = step(tokens, state)


def draw(probs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One token per row of `probs` (B, V), by inverting the cumulative distribution.

    The same distribution as `torch.multinomial(probs, 1)`, in four small operations instead
    of its validity checks, which dominated the time of a sampling step. The uniform numbers
    come from `generator` on the CPU, so a seed gives the same text on any device.
    """
    cdf = probs.cumsum(dim=-1)  # (B, V)
    u = torch.rand(probs.shape[0], 1, generator=generator).to(probs.device)  # (B, 1)
    # the first token whose cumulative probability exceeds u: zero-probability tokens are
    # empty intervals and are never drawn
    tokens = torch.searchsorted(cdf, u * cdf[:, -1:], right=True)  # (B, 1)
    return tokens.clamp_(max=probs.shape[-1] - 1).squeeze(1)
