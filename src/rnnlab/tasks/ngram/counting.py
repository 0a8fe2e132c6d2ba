"""Counting n-grams over a stream of token ids with NumPy: one sort per table, no Python loops.

How an n-gram is named
----------------------
A context of length m (the m tokens before a target) gets an integer id at *level* m by growing
it one token to the left from its parent, the context of length m - 1 with the same right end:

    key_m = id_{m-1} * V + (token m places back)        id_m = rank of key_m among level-m keys

Level 0 is the empty context (id 0). An n-gram of order k is then `context id at level k-1 * V +
predicted token`. Every key fits int64 whatever the vocabulary size or order (ids are below the
stream length, so a key is below T * V), which a flat base-V number of the k tokens would not
(10,000**5 > 2**63). Growing to the left puts a context next to its backoff parent h' (h without
its oldest token), which is the order in which Kneser-Ney interpolates.

Sorted key arrays make every look-up one `np.searchsorted`, and the n-grams that share a context
one contiguous slice (`searchsorted(ctx * V)` .. `searchsorted((ctx + 1) * V)`).

The stream
----------
A corpus is one long stream of ids (PTB-style LM corpora keep `<eos>` at line ends and do not
restart at each line; the neural LMs read them the same way). The first target's context is
padded with N-1 `<bos>` ids, as KenLM pads a sentence start with `<s>`. With N-1 pads every
lower-order n-gram has a left extension, so the continuation counts need no special case for the
start (KenLM keeps raw counts for n-grams that begin with `<s>`; here `<bos>` is itself the left
extension).
"""

from __future__ import annotations

import numpy as np

from rnnlab.data.vocab import Vocab

# KenLM's `--discount_fallback` values, used for an order whose count-of-counts cannot give the
# closed-form estimate (tiny or artificial data: some n_i = 0, or a discount outside (0, i]).
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)


def pad_stream(ids: np.ndarray, order: int) -> np.ndarray:
    """`order - 1` <bos> ids, then the stream: position t + order - 1 holds target t."""
    pad = np.full(order - 1, Vocab.bos_id, dtype=np.int64)
    return np.concatenate([pad, ids.astype(np.int64, copy=False)])


def count_stream(
    ids: np.ndarray, vocab_size: int, order: int, continuation: bool
) -> tuple[list[np.ndarray], dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Context tables for levels 1..N-1 and n-gram tables (sorted keys, counts).

    With `continuation=False` only the order-N table is returned, with raw counts c(h w). With
    `continuation=True` (Kneser-Ney) every order k < N holds the continuation count
    N1+(. h w) = |{x : c(x h w) > 0}| instead (Chen & Goodman 1998, section 2.7: a lower order is
    only consulted when the longer context has little evidence, so it should measure how many
    contexts a word follows, not how often it occurs); order N keeps raw counts.
    """
    V, T = vocab_size, len(ids)
    padded = pad_stream(ids, order)
    targets = padded[order - 1 :]  # (T,)
    context = np.zeros(T, dtype=np.int64)  # (T,) id of each target's context at the current level
    ctx_keys: list[np.ndarray] = []
    grams: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    previous = np.empty(0, dtype=np.int64)  # (T,) order k-1 keys, kept for continuation counts
    for k in range(1, order + 1):
        if k >= 2:  # grow each context one token to the left: level k-2 -> level k-1
            token = padded[order - k : order - k + T]  # (T,) the token k-1 places back
            keys, context = np.unique(context * V + token, return_inverse=True)
            ctx_keys.append(keys)
        gram_keys = context * V + targets  # (T,) order-k n-gram of each position
        if continuation and k >= 2:
            # each distinct (x h w) adds one to N1+(. h w): map the distinct order-k n-grams to
            # the order-(k-1) n-grams they extend, and count them.
            _, first = np.unique(gram_keys, return_index=True)
            grams[k - 1] = np.unique(previous[first], return_counts=True)
        previous = gram_keys
    grams[order] = np.unique(previous, return_counts=True)
    return ctx_keys, grams


def lookup_contexts(history: np.ndarray, ctx_keys: list[np.ndarray], vocab_size: int) -> np.ndarray:
    """Ids of every suffix of each history row: (B, N-1) token ids -> (B, N) ids, -1 when unseen.

    Column m is the id at level m of the last m tokens of the row (column 0 is the empty
    context, always id 0). An unseen context makes every longer one unseen too.
    """
    B, width = history.shape
    ids = np.zeros((B, width + 1), dtype=np.int64)  # (B, N)
    current = np.zeros(B, dtype=np.int64)  # (B,) id at the previous level, 0 where unseen
    alive = np.ones(B, dtype=bool)
    for m in range(1, width + 1):
        table = ctx_keys[m - 1]
        keys = current * vocab_size + history[:, width - m]
        pos = np.minimum(np.searchsorted(table, keys), len(table) - 1)  # tables are never empty
        alive &= table[pos] == keys
        current = np.where(alive, pos, 0)
        ids[:, m] = np.where(alive, pos, -1)
    return ids


def estimate_discounts(counts: np.ndarray) -> tuple[float, float, float]:
    """Modified Kneser-Ney discounts (D1, D2, D3+) of one order from its count-of-counts.

    Chen & Goodman 1998, section 3: with n_i the number of n-grams of this order whose count is
    exactly i, Y = n1 / (n1 + 2 n2), D1 = 1 - 2Y n2/n1, D2 = 2 - 3Y n3/n2, D3+ = 3 - 4Y n4/n3.
    The counts are the ones the order is estimated from (continuation counts below the top
    order), as KenLM does (Heafield et al. 2013, section 3.2). When the estimate is undefined or
    a discount falls outside (0, i], the order uses FALLBACK_DISCOUNTS, like KenLM's
    `--discount_fallback`.
    """
    n1, n2, n3, n4 = (int(np.count_nonzero(counts == i)) for i in (1, 2, 3, 4))
    if min(n1, n2, n3, n4) == 0:
        return FALLBACK_DISCOUNTS
    y = n1 / (n1 + 2 * n2)
    discounts = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    if not all(0 < d <= i for i, d in enumerate(discounts, start=1)):
        return FALLBACK_DISCOUNTS
    return discounts
