"""batchify and TBPTT windows: hand-checkable cases plus a property test over random sizes."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.data.batching import batchify, check_size, num_windows, tbptt_windows
from rnnlab.errors import RnnlabError


def test_batchify_columns_are_consecutive_pieces():
    ids = torch.arange(26)  # a..z of the module docstring
    streams = batchify(ids, 4)
    assert streams.shape == (6, 4)  # 26 // 4 = 6 rows, 2 tokens dropped
    assert streams[:, 0].tolist() == [0, 1, 2, 3, 4, 5]
    assert streams[:, 3].tolist() == [18, 19, 20, 21, 22, 23]
    assert streams.is_contiguous()


def test_windows_of_docstring_example():
    streams = batchify(torch.arange(26), 4)
    windows = list(tbptt_windows(streams, 2))
    assert [x.shape[0] for x, _ in windows] == [2, 2, 1]
    x, y = windows[0]
    assert x.tolist() == [[0, 6, 12, 18], [1, 7, 13, 19]]
    assert y.tolist() == [[1, 7, 13, 19], [2, 8, 14, 20]]
    assert windows[2][1].tolist() == [[5, 11, 17, 23]]
    assert num_windows(streams, 2) == 3


def test_targets_shift_across_window_borders():
    streams = batchify(torch.arange(1000), 5)
    windows = list(tbptt_windows(streams, 7))
    for (x0, y0), (x1, _) in zip(windows, windows[1:], strict=False):
        assert torch.equal(y0[:-1], x0[1:])  # inside a window
        assert torch.equal(y0[-1], x1[0])  # last target of a window = first input of the next
    xs = torch.cat([x for x, _ in windows])
    ys = torch.cat([y for _, y in windows])
    assert torch.equal(xs, streams[:-1]) and torch.equal(ys, streams[1:])


def test_too_small_for_batch_times_bptt():
    with pytest.raises(RnnlabError) as err:
        batchify(torch.arange(300), 64, bptt=35, split="valid")
    assert str(err.value) == (
        "valid split has 300 tokens: too small for --batch-size 64 x --bptt 35 (needs 2304); "
        "use a smaller batch or bptt"
    )
    check_size(2304, 64, 35)  # exactly enough
    with pytest.raises(RnnlabError, match="at least 1"):
        check_size(100, 0, 35)


def test_batchify_rejects_2d():
    with pytest.raises(ValueError, match="1-D"):
        batchify(torch.zeros(4, 4, dtype=torch.long), 2)


def _lengths(streams, seed, bptt=20):
    gen = torch.Generator().manual_seed(seed)
    return [x.shape[0] for x, _ in tbptt_windows(streams, bptt, variable=True, generator=gen)]


def test_variable_windows_deterministic_for_a_seed():
    streams = batchify(torch.arange(20_000), 4)
    first, again, other = _lengths(streams, 0), _lengths(streams, 0), _lengths(streams, 1)
    assert first == again
    assert first != other
    assert sum(first) == streams.shape[0] - 1  # still every position once
    body = first[:-1]  # the last window may be cut short by the stream's end
    assert min(body) >= 5 and max(body) <= 20 + 40
    assert len(set(body)) > 5  # lengths really vary
    assert 15 < sum(body) / len(body) < 21  # mostly around bptt, sometimes bptt / 2


def test_variable_windows_use_global_rng_without_generator():
    streams = batchify(torch.arange(5_000), 2)
    torch.manual_seed(3)
    a = [x.shape[0] for x, _ in tbptt_windows(streams, 10, variable=True)]
    torch.manual_seed(3)
    b = [x.shape[0] for x, _ in tbptt_windows(streams, 10, variable=True)]
    assert a == b


def test_variable_window_cap():
    streams = batchify(torch.arange(5_000), 1)
    gen = torch.Generator().manual_seed(0)
    lengths = [x.shape[0] for x, _ in
               tbptt_windows(streams, 30, variable=True, generator=gen, max_len=31)]
    assert max(lengths) == 31


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 400),
    batch=st.integers(1, 8),
    bptt=st.integers(1, 12),
    variable=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_windows_cover_every_token_once(n, batch, bptt, variable, seed):
    ids = torch.arange(n)
    if n < batch * (bptt + 1):
        with pytest.raises(RnnlabError, match="too small"):
            batchify(ids, batch, bptt=bptt)
        return
    streams = batchify(ids, batch, bptt=bptt)
    steps = n // batch
    assert streams.shape == (steps, batch)
    assert sorted(streams.flatten().tolist()) == list(range(steps * batch))  # remainder dropped
    gen = torch.Generator().manual_seed(seed)
    windows = list(tbptt_windows(streams, bptt, variable=variable, generator=gen))
    xs = torch.cat([x for x, _ in windows])
    ys = torch.cat([y for _, y in windows])
    assert torch.equal(xs, streams[:-1]) and torch.equal(ys, streams[1:])
    assert all(torch.equal(y, x + 1) for x, y in windows)  # ids are positions: y = x + 1
    if not variable:
        assert len(windows) == num_windows(streams, bptt) == num_windows(steps, bptt)
        assert all(x.shape[0] == bptt for x, _ in windows[:-1])
