"""Linear-chain conditional random field: sentence log-likelihood and Viterbi decoding.

For emission scores e_t(y) (from a BiLSTM, one row of K tag scores per token) and a tag path
y = (y_1 .. y_n), the CRF scores the whole path (Lafferty et al. 2001; Lample et al. 2016, 2.2):

    s(x, y) = start(y_1) + sum_{t=1..n} e_t(y_t) + sum_{t=2..n} A(y_{t-1}, y_t) + end(y_n)
    log p(y | x) = s(x, y) - log Z(x),      log Z(x) = logsumexp over all K^n paths of s(x, y')

log Z comes from the forward algorithm in log space, O(n K^2) instead of O(K^n):

    alpha_1(j) = start(j) + e_1(j)
    alpha_t(j) = logsumexp_i [alpha_{t-1}(i) + A(i, j)] + e_t(j)
    log Z      = logsumexp_j [alpha_n(j) + end(j)]

and Viterbi replaces logsumexp by max, keeping the argmax (the backpointer) of every step, then
follows the backpointers from the best last tag.

Transitions that a tag scheme forbids (BIO: O -> I-X, B-X -> I-Y, start -> I-X) get a score of
-inf, so no path through them has any probability or can be decoded. The learnt scores stay
ordinary parameters; the constraint is a boolean buffer applied with `masked_fill` on every call.

Shapes: B batch, T time steps (padded), K tags; emissions (B, T, K), tags (B, T), mask (B, T)
with mask[:, 0] all True (every sentence has at least one token).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

NEG_INF = float("-inf")


@dataclass(frozen=True)
class Constraints:
    """Which starts, transitions (from i to j) and ends are allowed (True) among K tags."""

    start: Tensor  # (K,) bool
    transitions: Tensor  # (K, K) bool, [i, j]: may tag j follow tag i?
    end: Tensor  # (K,) bool


def scheme_constraints(tags: Sequence[str], scheme: str) -> Constraints:
    """The valid moves of the BIO (IOB2) or BIOES scheme for these tag names ("O", "B-PER", ...).

    BIO: I-X only after B-X or I-X (never at the start). BIOES additionally: B-X and I-X must be
    followed by I-X or E-X, and a sentence starts with O, B- or S- and ends with O, E- or S-.
    """
    scheme = scheme.lower()
    if scheme not in ("bio", "bioes"):
        raise ValueError(f"scheme must be bio or bioes, got {scheme!r}")
    parts = [_split(tag) for tag in tags]
    k = len(tags)
    start = torch.ones(k, dtype=torch.bool)
    end = torch.ones(k, dtype=torch.bool)
    transitions = torch.ones(k, k, dtype=torch.bool)
    for j, (prefix_j, type_j) in enumerate(parts):
        if prefix_j in ("I", "E"):
            start[j] = False  # an entity's inside or end cannot open a sentence
        if scheme == "bioes" and prefix_j in ("B", "I"):
            end[j] = False  # an open entity cannot close a sentence
        for i, (prefix_i, type_i) in enumerate(parts):
            transitions[i, j] = _allowed(prefix_i, type_i, prefix_j, type_j, scheme)
    return Constraints(start=start, transitions=transitions, end=end)


def _split(tag: str) -> tuple[str, str]:
    if tag == "O":
        return "O", ""
    prefix, sep, kind = tag.partition("-")
    if not sep or prefix not in ("B", "I", "E", "S"):
        raise ValueError(f"tag {tag!r} is not O or B-/I-/E-/S- followed by a type")
    return prefix, kind


def _allowed(prefix_i: str, type_i: str, prefix_j: str, type_j: str, scheme: str) -> bool:
    continues = prefix_j in ("I", "E")  # j continues an entity opened before it
    if scheme == "bio":
        return not continues or (prefix_i in ("B", "I") and type_i == type_j)
    inside_i = prefix_i in ("B", "I")  # i leaves an entity open that j must continue
    if inside_i:
        return continues and type_i == type_j
    return not continues


class CRF(nn.Module):
    """A linear-chain CRF over K tags, with optional forbidden moves (`constraints`).

    `log_likelihood(emissions, tags, mask)` -> (B,) log p(tags | x); `decode(emissions, mask)`
    -> the best path of each sentence. Both run over the whole batch at once; `mask` marks the
    real tokens, so padding never changes a score.
    """

    def __init__(self, num_tags: int, constraints: Constraints | None = None) -> None:
        super().__init__()
        self.num_tags = num_tags
        self.start = nn.Parameter(torch.empty(num_tags))
        self.end = nn.Parameter(torch.empty(num_tags))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))  # [from, to]
        for p in (self.start, self.end, self.transitions):
            nn.init.uniform_(p, -0.1, 0.1)  # small: emissions dominate at first (as pytorch-crf)
        if constraints is None:
            ones = torch.ones(num_tags, dtype=torch.bool)
            constraints = Constraints(ones, torch.ones(num_tags, num_tags, dtype=torch.bool), ones)
        if constraints.transitions.shape != (num_tags, num_tags):
            raise ValueError(f"constraints for {constraints.transitions.shape[0]} tags, "
                             f"CRF has {num_tags}")
        if not bool(constraints.start.any()) or not bool(constraints.transitions.any(0).all()):
            raise ValueError("constraints leave some tag unreachable")
        self.register_buffer("allowed_start", constraints.start.clone())
        self.register_buffer("allowed_transitions", constraints.transitions.clone())
        self.register_buffer("allowed_end", constraints.end.clone())

    def scores(self) -> tuple[Tensor, Tensor, Tensor]:
        """(start (K,), transitions (K, K), end (K,)) with forbidden moves at -inf."""
        return (self.start.masked_fill(~self.allowed_start, NEG_INF),
                self.transitions.masked_fill(~self.allowed_transitions, NEG_INF),
                self.end.masked_fill(~self.allowed_end, NEG_INF))

    def log_likelihood(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """log p(tags | x) of each sentence, (B,). A forbidden gold path gives -inf."""
        _check(emissions, mask)
        return self.path_score(emissions, tags, mask) - self.log_partition(emissions, mask)

    def path_score(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """s(x, y) of the given paths, (B,)."""
        start, transitions, end = self.scores()
        lengths = mask.sum(1)  # (B,)
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # (B, T)
        moved = transitions[tags[:, :-1], tags[:, 1:]]  # (B, T-1): A(y_{t-1}, y_t)
        zero = emissions.new_zeros(())
        # torch.where, not multiplication by the mask: -inf * 0 would be nan
        total = (torch.where(mask, emitted, zero).sum(1)
                 + torch.where(mask[:, 1:], moved, zero).sum(1))
        last = tags.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)  # (B,): y_n
        return start[tags[:, 0]] + total + end[last]

    def log_partition(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """log Z(x) by the forward algorithm, (B,)."""
        start, transitions, end = self.scores()
        alpha = start + emissions[:, 0]  # (B, K)
        for t in range(1, emissions.shape[1]):
            # (B, K, 1) + (K, K) -> (B, K, K) over (previous i, next j); sum out i in log space
            step = torch.logsumexp(alpha.unsqueeze(2) + transitions, dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t].unsqueeze(1), step, alpha)  # padding keeps alpha_n
        return torch.logsumexp(alpha + end, dim=1)

    @torch.no_grad()
    def decode(self, emissions: Tensor, mask: Tensor) -> list[list[int]]:
        """The highest-scoring path of each sentence (Viterbi), as lists of tag ids."""
        return viterbi(emissions, mask, *self.scores())


@torch.no_grad()
def viterbi(emissions: Tensor, mask: Tensor, start: Tensor, transitions: Tensor,
            end: Tensor) -> list[list[int]]:
    """The highest-scoring path of each sentence under these scores (a CRF's own, or an
    ensemble's mean), as lists of tag ids."""
    _check(emissions, mask)
    num_tags = emissions.shape[2]
    score = start + emissions[:, 0]  # (B, K): best score of a path ending in each tag
    backpointers = []
    for t in range(1, emissions.shape[1]):
        best, previous = (score.unsqueeze(2) + transitions).max(dim=1)  # (B, K) each
        step = best + emissions[:, t]
        keep = mask[:, t].unsqueeze(1)  # (B, 1)
        score = torch.where(keep, step, score)
        # past a sentence's end the pointer is the identity, so the path passes through
        identity = torch.arange(num_tags, device=emissions.device).expand_as(previous)
        backpointers.append(torch.where(keep, previous, identity))
    last = (score + end).argmax(dim=1)  # (B,)
    path = [last]
    for pointers in reversed(backpointers):
        last = pointers.gather(1, last.unsqueeze(1)).squeeze(1)
        path.append(last)
    best_paths = torch.stack(path[::-1], dim=1).tolist()  # (B, T)
    lengths = mask.sum(1).tolist()
    return [p[:n] for p, n in zip(best_paths, lengths, strict=True)]


def _check(emissions: Tensor, mask: Tensor) -> None:
    if emissions.dim() != 3 or mask.shape != emissions.shape[:2]:
        raise ValueError(f"expected emissions (B, T, K) and mask (B, T), got "
                         f"{tuple(emissions.shape)} and {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        raise ValueError("mask must be a bool tensor")
    if not bool(mask[:, 0].all()):
        raise ValueError("every sequence needs at least one token (mask[:, 0] all True)")
