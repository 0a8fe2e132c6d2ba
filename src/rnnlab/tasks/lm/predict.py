"""Inference with a trained language model: log-probabilities of a whole split (training's dev
scores, `eval`) and of a sentence (`score`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from rnnlab.data.batching import random_windows
from rnnlab.nn.utils import detach_state


@dataclass(frozen=True)
class StreamScore:
    """Sufficient statistics (sacrebleu's habit): total NLL in nats and the token count."""

    nll: float
    tokens: int

    @property
    def loss(self) -> float:
        return self.nll / max(self.tokens, 1)

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.loss, 700.0))

    @property
    def bits_per_token(self) -> float:
        return self.loss / math.log(2)


@torch.no_grad()
def score_streams(model, streams: Tensor, bptt: int) -> StreamScore:  # noqa: ANN001
    """NLL of every next token of `streams` (N, B), state carried across windows as in training."""
    model.eval()
    state = None
    nll, count = 0.0, 0
    for start in range(0, streams.shape[0] - 1, bptt):
        length = min(bptt, streams.shape[0] - 1 - start)
        x = streams[start : start + length]  # (T, B)
        y = streams[start + 1 : start + 1 + length]  # (T, B)
        logits, state = model(x, state)
        state = detach_state(state)
        nll += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                     reduction="sum"))
        count += y.numel()
    return StreamScore(nll, count)


@torch.no_grad()
def score_windows(model, ids: Tensor, length: int, batch_size: int = 64) -> StreamScore:  # noqa: ANN001
    """What `score_streams(model, batchify(ids, 1), length)` gives for a model that carries no
    state (a Transformer): every next token of one stream, read in consecutive windows of
    `length` that each start afresh, but `batch_size` windows at a time."""
    model.eval()
    count = ids.numel() - 1  # tokens that have a predecessor
    nll = 0.0
    for start in range(0, count, length * batch_size):
        starts = range(start, min(start + length * batch_size, count), length)
        for width in {min(length, count - s) for s in starts}:  # the last window may be short
            chosen = [s for s in starts if min(length, count - s) == width]
            x = torch.stack([ids[s : s + width] for s in chosen], dim=1)  # (T, B)
            y = torch.stack([ids[s + 1 : s + 1 + width] for s in chosen], dim=1)  # (T, B)
            logits, _ = model(x)
            nll += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                         reduction="sum"))
    return StreamScore(nll, count)


@torch.no_grad()
def window_loss(model, ids: Tensor, batch_size: int, length: int, num_batches: int,  # noqa: ANN001
                seed: int) -> float:
    """nanoGPT's `estimate_loss`: the mean of the mean losses of `num_batches` batches of random
    windows (the same windows at every call, for a given seed). Each window starts afresh, so
    its early tokens see little context; the whole-stream loss counts them the same way."""
    model.eval()
    generator = torch.Generator().manual_seed(seed + 7919)
    losses = [float(model.loss(x, y)[0])
              for x, y in random_windows(ids, batch_size, length, num_batches, generator)]
    return sum(losses) / len(losses)


@torch.no_grad()
def token_log_probs(model, context_id: int, ids: list[int]) -> list[float]:  # noqa: ANN001
    """log p(ids[t] | context, ids[<t]) for each t: the probability of a sentence, one factor
    per token (the chain rule). `context_id` stands for "a sentence starts here".

    A text longer than a Transformer's context is read with `step`, so each token sees the
    `context_length` tokens before it, exactly as when sampling.
    """
    model.eval()
    device = next(model.parameters()).device
    inputs = torch.tensor([context_id, *ids[:-1]], device=device).unsqueeze(1)  # (T, 1)
    limit = getattr(model, "context_length", None)
    if limit and inputs.shape[0] > limit:
        rows, state = [], None
        for token in inputs:
            step_logits, state = model.step(token, state)  # (1, V)
            rows.append(step_logits)
        logits = torch.stack(rows)  # (T, 1, V)
    else:
        logits, _ = model(inputs)  # (T, 1, V)
    log_probs = F.log_softmax(logits.squeeze(1).float(), dim=-1)  # (T, V)
    targets = torch.tensor(ids, device=device)
    return log_probs.gather(1, targets.unsqueeze(1)).squeeze(1).tolist()
