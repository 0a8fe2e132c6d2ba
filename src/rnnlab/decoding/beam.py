"""Beam search over any model's `step(tokens, state) -> (logits, state)`, batched over sentences.

Each sentence keeps the `beam` best prefixes (by summed log-probability). A prefix that ends in
<eos> stays in its beam, frozen (its only continuation is <eos> at log-probability 0), so it
competes with the open ones on equal terms; every hypothesis that finishes is also remembered,
and the answer is the finished one with the best length-normalised score:

    score(Y) / lp(Y),  lp(Y) = ((5 + |Y|) / 6) ** alpha    (GNMT, Wu et al. 2016, sec. 7)

with |Y| counting the closing <eos>; alpha = 0 ranks by the plain sum (short outputs win more
often). With n_best > 1 the best hypothesis also carries the next best finished ones
(`alternatives`), as OpenNMT's and fairseq's `--n_best` return them. The search needs one more
thing of the state than greedy decoding: a way to follow the surviving prefixes,
`reorder(state, indices)`. The default handles states that are tensors, or tuples / lists /
dicts of them, with the batch on dim 0; models whose state keeps the batch
elsewhere (recurrent layers: (L, B, H)) pass their own (e.g. `Seq2Seq.reorder_state`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from rnnlab.decoding.greedy import Hypothesis, StepFn, attention_weights


def select_batch(state: Any, indices: Tensor) -> Any:
    """Rows `indices` of every tensor in `state` (batch on dim 0); None stays None."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.index_select(0, indices)
    if isinstance(state, dict):
        return {k: select_batch(v, indices) for k, v in state.items()}
    return type(state)(select_batch(v, indices) for v in state)


def length_penalty(length: int, alpha: float) -> float:
    return ((5 + length) / 6) ** alpha


@torch.no_grad()
def beam_search(step: StepFn, state: Any, bos_id: int, eos_id: int, max_lengths: Tensor, *,
                beam: int = 5, alpha: float = 0.0,
                reorder: Callable[[Any, Tensor], Any] = select_batch,
                n_best: int = 1) -> list[Hypothesis]:
    """Decode max_lengths.numel() sentences at once (`state` holds one entry per sentence);
    sentence b's outputs have at most max_lengths[b] tokens, the last forced to be <eos>."""
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    if not 1 <= n_best <= beam:
        raise ValueError(f"n_best must be in 1..beam ({beam}), got {n_best}")
    batch, k = max_lengths.numel(), beam
    device = max_lengths.device
    rows = torch.arange(batch, device=device)
    state = reorder(state, rows.repeat_interleave(k))  # (B*K, ...): K copies of each sentence
    tokens = torch.full((batch * k,), bos_id, dtype=torch.long, device=device)
    scores = torch.full((batch, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # one live prefix to start with, or the K copies would fill the beam
    finished = torch.zeros(batch, k, dtype=torch.bool, device=device)
    history = torch.zeros(batch, k, 0, dtype=torch.long, device=device)
    attention: Tensor | None = None  # (B, K, t, S)
    kept: list[list[tuple[float, Hypothesis]]] = [[] for _ in range(batch)]  # n_best, best first
    for t in range(int(max_lengths.max())):
        logits, state = step(tokens, state)
        log_probs = torch.log_softmax(logits.float(), dim=-1).view(batch, k, -1)  # (B, K, V)
        vocab = log_probs.shape[-1]
        not_eos = torch.arange(vocab, device=device) != eos_id  # (V,)
        # prefixes at the length limit must end; finished ones continue with <eos> for free
        at_limit = (t + 1 >= max_lengths)[:, None, None]  # (B, 1, 1)
        log_probs = torch.where(at_limit, log_probs.masked_fill(not_eos, float("-inf")),
                                log_probs)
        free_eos = torch.zeros(vocab, device=device).masked_fill(not_eos, float("-inf"))
        log_probs = torch.where(finished[..., None], free_eos, log_probs)
        candidates = (scores[..., None] + log_probs).view(batch, -1)  # (B, K*V)
        scores, flat = candidates.topk(k, dim=1)  # (B, K)
        origin, tokens_bk = flat // vocab, flat % vocab  # (B, K) each
        state = reorder(state, (rows[:, None] * k + origin).view(-1))
        history = torch.cat([history.gather(1, origin[..., None].expand(-1, -1, t)),
                             tokens_bk[..., None]], dim=2)  # (B, K, t+1)
        step_weights = attention_weights(state)
        if step_weights is not None:
            step_weights = step_weights.view(batch, k, 1, -1)  # (B, K, 1, S)
            attention = step_weights if attention is None else torch.cat([attention.gather(
                1, origin[..., None, None].expand(-1, -1, *attention.shape[2:])),
                step_weights], dim=2)
        was_finished = finished.gather(1, origin)
        finished = was_finished | (tokens_bk == eos_id) | torch.isinf(scores)
        newly = finished & ~was_finished & torch.isfinite(scores)
        for b, j in newly.nonzero().tolist():
            normalized = float(scores[b, j]) / length_penalty(t + 1, alpha)
            if len(kept[b]) < n_best or normalized > kept[b][-1][0]:
                weights = None if attention is None else attention[b, j].cpu()
                kept[b].append((normalized, Hypothesis(history[b, j, :t].tolist(),
                                                       float(scores[b, j]), weights)))
                kept[b].sort(key=lambda entry: -entry[0])
                del kept[b][n_best:]
        if bool(finished.all()):
            break
        tokens = tokens_bk.view(-1)
    results = []
    for entries in kept:
        best = entries[0][1]
        best.alternatives = [hypothesis for _, hypothesis in entries[1:]]
        results.append(best)
    return results
