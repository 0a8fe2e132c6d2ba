import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.data.buckets import bucket_batches, pad_batch


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 60), min_size=1, max_size=300), st.integers(1, 17),
       st.booleans(), st.integers(0, 5))
def test_every_example_once(lengths, batch_size, shuffle, epoch):
    batches = bucket_batches(lengths, batch_size, shuffle=shuffle, seed=3, epoch=epoch)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert all(1 <= len(b) <= batch_size for b in batches)


def test_deterministic_per_epoch_and_grouped_by_length():
    generator = torch.Generator().manual_seed(1)
    lengths = [int(x) for x in torch.randint(1, 50, (2000,), generator=generator)]
    a = bucket_batches(lengths, 32, seed=7, epoch=2)
    assert a == bucket_batches(lengths, 32, seed=7, epoch=2)
    assert a != bucket_batches(lengths, 32, seed=7, epoch=3)
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in a) / len(a)
    assert spread < 5  # random batches of 32 would spread ~45


def test_pad_batch():
    padded, lengths = pad_batch([[5, 6, 7], [8]], pad_id=0, min_length=2)
    assert padded.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert lengths.tolist() == [3, 1]
    padded, _ = pad_batch([[1]], min_length=3)
    assert padded.shape == (1, 3)
