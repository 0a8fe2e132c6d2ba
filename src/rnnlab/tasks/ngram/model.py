"""The n-gram language model: add-k and interpolated modified Kneser-Ney over token ids.

It reads the same ids as the neural LMs (one `Vocab`, so `<unk>` is handled identically) and
exposes the same generation interface, `step(tokens, state) -> (logits, state)`, so sampling and
beam search treat it as one more language model.

Support. `<pad>` and `<bos>` are never predicted: they get probability 0 (log-probability -inf)
and every distribution sums to 1 over the other V - 2 ids, `<unk>` and `<eos>` included. The
uniform distribution at the bottom of the recursion is over those V - 2 ids.

One recursion serves both smoothings (Chen & Goodman 1998, section 2, interpolated models). With
h' the context h without its oldest token and S the support,

    p_0(w)     = 1 / |S|                                    (w in S; 0 for <pad>, <bos>)
    p_k(w | h) = alpha_k(h, w) + gamma_k(h) * p_{k-1}(w | h')   if h was seen in training
    p_k(w | h) = p_{k-1}(w | h')                                 otherwise

- kneser-ney (C&G 1998 section 3, interpolated modified KN), orders 1..N, c_k = raw counts at
  k = N, continuation counts N1+(. h w) below (section 2.7):
      alpha_k = (c_k(h w) - D_k(c_k(h w))) / c_k(h .)
      gamma_k = (D_k1 N1(h .) + D_k2 N2(h .) + D_k3+ N3+(h .)) / c_k(h .)
  where N_i(h .) counts the words with c_k(h w) = i (3 or more for N3+), so gamma_k is exactly
  the mass the discounts removed and each p_k sums to 1.
- add-k (Lidstone, C&G 1998 section 2.1; add-one when k = 1), order N only:
      p(w | h) = (c(h w) + k) / (c(h .) + k |S|)
               = c(h w) / (c(h .) + k|S|)  +  k|S| / (c(h .) + k|S|) * 1 / |S|
  which is the recursion with alpha = c / (c(h .) + k|S|) and gamma = k|S| / (c(h .) + k|S|)
  directly over the uniform; an unseen context gets the uniform distribution.

The stream. Training and scored data are one long stream of ids (PTB-style corpora keep `<eos>`
at line ends; context runs across lines, as for the neural LMs); the context of the first tokens
is padded with `<bos>`, as KenLM pads a sentence start with `<s>` (details in `counting.py`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rnnlab.config import check_fields, field, from_dict
from rnnlab.data.vocab import SPECIALS, Vocab
from rnnlab.errors import RnnlabError
from rnnlab.tasks.ngram.counting import count_stream, estimate_discounts, lookup_contexts

SMOOTHINGS = ("kneser-ney", "add-k")
MAX_ORDER = 10
NEVER_PREDICTED = (Vocab.pad_id, Vocab.bos_id)
CHUNK = 1 << 20  # positions scored at once: bounds score_stream's memory on long streams
FORMAT = "rnnlab.ngram"
JSON_NAME, ARRAYS_NAME = "ngram.json", "ngram.npz"


@dataclass(frozen=True)
class NGramConfig:
    """How `rnnlab train ngram` builds a model; saved in `ngram.json` next to the counts."""

    order: int = field(5, "n-gram order N: predict from the previous N-1 tokens (1-10)",
                       ge=1, le=MAX_ORDER)
    smoothing: str = field(
        "kneser-ney",
        "kneser-ney (interpolated modified, Chen & Goodman 1998) or add-k (Lidstone)",
        choices=SMOOTHINGS,
    )
    k: float = field(0.01, "add-k pseudo-count per token (1 = add-one); unused by kneser-ney",
                     ge=0.0)

    def __post_init__(self) -> None:
        check_fields(self)
        if not 1 <= self.order <= MAX_ORDER:
            raise RnnlabError(f"n-gram order must be 1..{MAX_ORDER}, got {self.order}")
        if self.smoothing not in SMOOTHINGS:
            raise RnnlabError(
                f"unknown smoothing {self.smoothing!r}: choose one of {', '.join(SMOOTHINGS)}"
            )
        if self.smoothing == "add-k" and not self.k > 0:
            raise RnnlabError(f"add-k needs k > 0 (k = 0 gives unseen words p = 0), got {self.k}")


@dataclass(frozen=True)
class _Order:
    """One order's interpolation terms: alpha per n-gram (sorted keys), gamma per context."""

    keys: np.ndarray  # (G,) int64, context id * V + word, sorted
    alpha: np.ndarray  # (G,) float64
    gamma: np.ndarray  # (C,) float64, indexed by context id


class NGramModel:
    """Shapes: B rows (batch or stream positions), V vocabulary size, N order."""

    def __init__(
        self,
        config: NGramConfig,
        vocab_size: int,
        ctx_keys: list[np.ndarray],
        grams: dict[int, tuple[np.ndarray, np.ndarray]],
        discounts: dict[int, tuple[float, float, float]],
        train_tokens: int,
    ) -> None:
        """Build from count tables (see `counting.py`); use `fit` or `load` rather than this."""
        self.config, self.vocab_size, self.train_tokens = config, vocab_size, train_tokens
        self.ctx_keys, self.grams, self.discounts = ctx_keys, grams, discounts
        self.support_size = vocab_size - len(NEVER_PREDICTED)
        self._orders = {k: self._interpolation_terms(k) for k in sorted(grams)}
        # p_1(w), the distribution after the empty context (always seen): shared by every row,
        # so `_distributions` starts from it instead of redoing the V-wide order 1 per row
        first = np.full((1, vocab_size), 1.0 / self.support_size)  # (1, V) p_0
        first[:, NEVER_PREDICTED] = 0.0
        if 1 in self._orders:
            self._interpolate(first, np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64), 1)
        self._first_order = first[0]  # (V,)

    @property
    def order(self) -> int:
        return self.config.order

    @classmethod
    def fit(
        cls,
        ids: Sequence[int] | np.ndarray | torch.Tensor,
        vocab_size: int,
        config: NGramConfig | None = None,
    ) -> NGramModel:
        """Count a training stream of ids; seconds for PTB (929k tokens) at order 5."""
        config = config or NGramConfig()
        if vocab_size <= len(SPECIALS):
            raise RnnlabError(f"vocab_size counts the {len(SPECIALS)} specials, got {vocab_size}")
        stream = _as_stream(ids, vocab_size, "training data", targets=True)
        if stream.size == 0:
            raise RnnlabError("cannot fit an n-gram model on an empty stream")
        kneser_ney = config.smoothing == "kneser-ney"
        ctx_keys, grams = count_stream(stream, vocab_size, config.order, continuation=kneser_ney)
        discounts = {}  # add-k needs none
        if kneser_ney:
            discounts = {k: estimate_discounts(counts) for k, (_, counts) in grams.items()}
        return cls(config, vocab_size, ctx_keys, grams, discounts, stream.size)

    def _interpolation_terms(self, k: int) -> _Order:
        keys, counts = self.grams[k]
        n_contexts = 1 if k == 1 else len(self.ctx_keys[k - 2])
        context = keys // self.vocab_size  # (G,)
        total = np.bincount(context, weights=counts, minlength=n_contexts)  # (C,) c(h .)
        if self.config.smoothing == "add-k":
            mass = self.config.k * self.support_size
            return _Order(keys, counts / (total[context] + mass), mass / (total + mass))
        table = np.array((0.0, *self.discounts[k]))  # D(0) = 0, D1, D2, D3+
        removed = table[np.minimum(counts, 3)]  # (G,) D(c(h w))
        gamma = np.bincount(context, weights=removed, minlength=n_contexts) / total
        return _Order(keys, (counts - removed) / total[context], gamma)

    # --- probabilities -------------------------------------------------------------------------

    def _context_ids(self, history: np.ndarray) -> np.ndarray:
        """(B, N-1) previous ids, oldest first -> (B, N) context id per level, -1 when unseen."""
        return lookup_contexts(history, self.ctx_keys, self.vocab_size)

    def _probabilities_of(self, contexts: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """p(target | context) for each row: (B, N) context ids, (B,) targets -> (B,)."""
        p = np.where(np.isin(targets, NEVER_PREDICTED), 0.0, 1.0 / self.support_size)  # (B,)
        for k, terms in self._orders.items():
            context = contexts[:, k - 1]
            seen = context >= 0
            context = np.where(seen, context, 0)
            keys = context * self.vocab_size + targets
            pos = np.minimum(np.searchsorted(terms.keys, keys), len(terms.keys) - 1)
            alpha = np.where(terms.keys[pos] == keys, terms.alpha[pos], 0.0)
            p = np.where(seen, alpha + terms.gamma[context] * p, p)
        return p

    def _interpolate(self, p: np.ndarray, rows: np.ndarray, context: np.ndarray, k: int) -> None:
        """p[rows] <- alpha_k(h, .) + gamma_k(h) * p[rows], in place: (B, V) p, (R,) rows and
        their context ids at level k-1 (all seen)."""
        terms, V = self._orders[k], self.vocab_size
        p[rows] *= terms.gamma[context][:, None]
        # the n-grams of one context are the contiguous slice lo..hi of the sorted keys
        lo = np.searchsorted(terms.keys, context * V)
        hi = np.searchsorted(terms.keys, (context + 1) * V)
        length = hi - lo  # (R,)
        starts = np.repeat(lo - (np.cumsum(length) - length), length)
        flat = np.arange(length.sum()) + starts  # (sum length,) all those n-grams
        p[np.repeat(rows, length), terms.keys[flat] % V] += terms.alpha[flat]

    def _distributions(self, contexts: np.ndarray) -> np.ndarray:
        """The whole next-token distribution of each row: (B, N) context ids -> (B, V)."""
        p = np.tile(self._first_order, (contexts.shape[0], 1))  # (B, V) p_1
        for k in self._orders:
            if k > 1:
                rows = np.flatnonzero(contexts[:, k - 1] >= 0)  # (R,) rows whose context was seen
                self._interpolate(p, rows, contexts[rows, k - 1], k)
        return p

    def _history(self, context: Sequence[int] | np.ndarray | torch.Tensor) -> np.ndarray:
        """The last N-1 ids of a context, left-padded with <bos>: -> (1, N-1)."""
        width = self.order - 1
        ids = _as_stream(context, self.vocab_size, "context")
        ids = ids[max(ids.size - width, 0) :]
        padded = np.full(width, Vocab.bos_id, dtype=np.int64)
        padded[width - ids.size :] = ids
        return padded[None, :]  # (1, N-1)

    def log_probs(self, context: Sequence[int] | np.ndarray | torch.Tensor) -> np.ndarray:
        """(V,) natural-log probabilities of the next token after `context` (-inf for <pad>, <bos>).

        Only the last N-1 ids matter; a shorter context is padded with <bos> like a stream start.
        """
        p = self._distributions(self._context_ids(self._history(context)))[0]
        with np.errstate(divide="ignore"):
            return np.log(p)

    def score_stream(self, ids: Sequence[int] | np.ndarray | torch.Tensor) -> np.ndarray:
        """(T,) log p(ids[t] | ids[:t]) for every position, the start padded with <bos>.

        Sum it and divide by T for the cross-entropy in nats: perplexity = exp(-mean).
        """
        stream = _as_stream(ids, self.vocab_size, "scored stream", targets=True)
        width = self.order - 1
        padded = np.concatenate([np.full(width, Vocab.bos_id, dtype=np.int64), stream])
        out = np.empty(stream.size)
        for start in range(0, stream.size, CHUNK):
            stop = min(start + CHUNK, stream.size)
            if width:  # row i: padded[start + i : start + i + width], the N-1 ids before target
                history = np.lib.stride_tricks.sliding_window_view(
                    padded[start : stop - 1 + width], width
                )  # (stop - start, N-1)
            else:
                history = np.empty((stop - start, 0), dtype=np.int64)
            p = self._probabilities_of(self._context_ids(history), stream[start:stop])
            out[start:stop] = np.log(p)
        return out

    def step(
        self, tokens: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Feed one token per row, get the next token's log-probabilities (as logits).

        tokens (B,) LongTensor; state (B, N-1) LongTensor of the last N-1 ids, None at the start
        (= all <bos>). Returns logits (B, V) float32 on the tokens' device and the new state, so a
        decoder feeds <bos> (or a prompt, token by token) and then its own samples.
        """
        B = tokens.shape[0]
        if state is None:
            state = torch.full((B, self.order - 1), Vocab.bos_id, dtype=torch.long)
        state = state.to(tokens.device)
        history = torch.cat([state, tokens.long().reshape(B, 1)], dim=1)[:, 1:]  # (B, N-1)
        ids = history.cpu().numpy()
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise RnnlabError(f"token ids must lie in 0..{self.vocab_size - 1}")
        p = self._distributions(self._context_ids(ids))  # (B, V)
        with np.errstate(divide="ignore"):
            logits = torch.from_numpy(np.log(p)).to(device=tokens.device, dtype=torch.float32)
        return logits, history

    # --- storage -------------------------------------------------------------------------------

    def save(self, directory: str | Path) -> None:
        """Write `ngram.npz` (count tables, NumPy arrays only) and `ngram.json` (the rest).

        Each file is written under a temporary name and renamed, so a crash never leaves half a
        model. The interpolation terms are recomputed on load from counts and discounts.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {f"ctx_keys_{m}": keys for m, keys in enumerate(self.ctx_keys, start=1)}
        for k, (keys, counts) in self.grams.items():
            arrays[f"gram_keys_{k}"], arrays[f"gram_counts_{k}"] = keys, counts
        meta = {
            "format": FORMAT,
            "version": 1,
            "config": dataclasses.asdict(self.config),
            "vocab_size": self.vocab_size,
            "train_tokens": self.train_tokens,
            "orders": sorted(self.grams),
            "discounts": {str(k): list(d) for k, d in sorted(self.discounts.items())},
        }
        tmp = directory / (ARRAYS_NAME + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, directory / ARRAYS_NAME)
        tmp = directory / (JSON_NAME + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
        os.replace(tmp, directory / JSON_NAME)

    @classmethod
    def load(cls, directory: str | Path) -> NGramModel:
        """Read a model written by `save`; missing or corrupt files raise RnnlabError."""
        directory = Path(directory)
        try:
            meta = json.loads((directory / JSON_NAME).read_text())
            config = from_dict(NGramConfig, meta["config"])
            vocab_size, train_tokens = int(meta["vocab_size"]), int(meta["train_tokens"])
            orders = [int(k) for k in meta["orders"]]
            discounts = {int(k): tuple(float(x) for x in d) for k, d in meta["discounts"].items()}
            with np.load(directory / ARRAYS_NAME, allow_pickle=False) as data:
                ctx_keys = [data[f"ctx_keys_{m}"] for m in range(1, config.order)]
                grams = {k: (data[f"gram_keys_{k}"], data[f"gram_counts_{k}"]) for k in orders}
        except FileNotFoundError as err:
            raise RnnlabError(f"n-gram model file missing: {err.filename}") from err
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as err:
            raise RnnlabError(f"corrupt n-gram model in {directory}: {err!r}") from err
        if meta.get("format") != FORMAT:
            raise RnnlabError(f"{directory / JSON_NAME} is not an rnnlab n-gram model")
        _check_tables(directory, config, vocab_size, ctx_keys, grams, discounts)
        return cls(config, vocab_size, ctx_keys, grams, discounts, train_tokens)


def _check_tables(
    directory: Path,
    config: NGramConfig,
    vocab_size: int,
    ctx_keys: list[np.ndarray],
    grams: dict[int, tuple[np.ndarray, np.ndarray]],
    discounts: dict[int, tuple[float, float, float]],
) -> None:
    """Refuse tables that would give wrong numbers silently (truncated, unsorted, out of range)."""
    kneser_ney = config.smoothing == "kneser-ney"
    expected = list(range(1, config.order + 1)) if kneser_ney else [config.order]

    def fail(why: str) -> None:
        raise RnnlabError(f"corrupt n-gram model in {directory}: {why}")

    if vocab_size <= len(SPECIALS):
        fail(f"vocab_size {vocab_size} leaves no word to predict")
    if sorted(grams) != expected:
        fail(f"orders {sorted(grams)} where {expected} were expected")
    if kneser_ney and sorted(discounts) != expected:
        fail("discounts missing for some orders")
    if any(len(d) != 3 for d in discounts.values()):
        fail("each order needs three discounts")
    sizes = [1] + [len(keys) for keys in ctx_keys]
    tables = [(keys, sizes[m - 1]) for m, keys in enumerate(ctx_keys, start=1)]
    tables += [(keys, sizes[k - 1]) for k, (keys, _) in grams.items()]
    for keys, parents in tables:
        if keys.ndim != 1 or keys.dtype != np.int64 or keys.size == 0:
            fail("a key table is not a non-empty 1-D int64 array")
        if np.any(np.diff(keys) <= 0) or keys[0] < 0 or keys[-1] >= parents * vocab_size:
            fail("a key table is unsorted or out of range")
    for keys, counts in grams.values():
        if counts.shape != keys.shape or counts.dtype.kind not in "iu" or np.any(counts <= 0):
            fail("counts do not match their keys")


def _as_stream(
    ids: Sequence[int] | np.ndarray | torch.Tensor,
    vocab_size: int,
    what: str,
    targets: bool = False,
) -> np.ndarray:
    """Any 1-D sequence of ids -> int64 array, checked against the vocabulary size (and, for
    `targets`, free of the ids that are never predicted)."""
    if isinstance(ids, torch.Tensor):
        ids = ids.detach().cpu().numpy()
    array = np.asarray(ids)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise RnnlabError(f"{what} must be a 1-D sequence of integer ids, got {array.dtype}")
    array = array.astype(np.int64, copy=False)
    if array.min() < 0 or array.max() >= vocab_size:
        raise RnnlabError(f"{what} has ids outside 0..{vocab_size - 1}")
    if targets and np.isin(array, NEVER_PREDICTED).any():
        raise RnnlabError(f"{what} contains <pad> or <bos> ids, which are never predicted")
    return array
