"""Sentence batches: similar lengths together (little padding), padded with their lengths.

Classification, tagging and translation all train on sentences of varied length. Sorting the
whole set by length would make every epoch's batches the same; shuffling alone pads a lot. The
usual middle way (torchtext's BucketIterator, fairseq): shuffle, cut into pools of many
batches, sort each pool by length, cut it into batches, shuffle the batches. The batches of an
epoch are a function of (seed, epoch) only, so a resumed run sees the same ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

POOL_BATCHES = 50  # batches per sorting pool


def bucket_batches(lengths: Sequence[int], batch_size: int, *, shuffle: bool = True,
                   seed: int = 0, epoch: int = 0) -> list[list[int]]:
    """Lists of example indices. Without `shuffle`: sorted by length (longest first), for
    evaluation, where order does not matter and padding does."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(lengths)
    if not shuffle:
        order = sorted(range(n), key=lambda i: -lengths[i])
        return [order[i:i + batch_size] for i in range(0, n, batch_size)]
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=generator).tolist()
    pool = batch_size * POOL_BATCHES
    batches: list[list[int]] = []
    for start in range(0, n, pool):
        chunk = sorted(order[start:start + pool], key=lambda i: lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int = 0,
              min_length: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) LongTensor padded with `pad_id`, and the (B,) lengths. T >= `min_length`
    (a CNN with width-5 filters needs at least 5 positions)."""
    if not sequences:
        raise ValueError("cannot pad an empty batch")
    lengths = [len(s) for s in sequences]
    width = max(*lengths, min_length)
    # padded as Python lists, then one tensor: a row at a time costs two torch calls per row
    padded = torch.tensor([[*s, *[pad_id] * (width - len(s))] for s in sequences],
                          dtype=torch.long)
    return padded, torch.tensor(lengths, dtype=torch.long)
