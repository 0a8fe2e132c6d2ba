"""Language-model batches: B parallel token streams cut into truncated-BPTT windows.

The whole split is one long token stream. `batchify` cuts it into B equal pieces laid side by
side as columns (the remainder that does not fill a row is dropped), so each column reads on
where it left off and the hidden state of one window is the right start for the next.
`tbptt_windows` then walks down the rows, `bptt` at a time; the targets are the same rows
moved down by one, so the last target of a window is the first input of the next::

    stream   a b c d e f g h i j k l m n o p q r s t u v w x (y z dropped, B = 4)

    batchify(stream, 4)             tbptt_windows(streams, bptt=2)
               B=4                     x (2, B)    y (2, B)
           +---------+
      t=0  | a g m s |  -+ window 1  a g m s      b h n t
      t=1  | b h n t |   |           b h n t      c i o u
      t=2  | c i o u |  -+ window 2  c i o u      d j p v
      t=3  | d j p v |   |           d j p v      e k q w
      t=4  | e k q w |  -+ window 3  e k q w      f l r x
      t=5  | f l r x |  -+ (the last row is only ever a target)
           +---------+
     (T_total, B) = (6, 4)

Shapes: T = time steps of a window, B = batch (parallel streams). Windows are time-major
(T, B), as `batch_first=False` recurrent layers take them. Every position except the very
first is a target exactly once per epoch. Between windows, detach the hidden state
(`detach_state`) so gradients stop at the window border while the state itself flows on.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from rnnlab.errors import RnnlabError

VARIABLE_MIN_LEN = 5  # AWD-LSTM never makes a window shorter than 5 steps
VARIABLE_STD = 5.0  # std of the window length around bptt (AWD-LSTM)
VARIABLE_MAX_EXTRA = 40  # AWD-LSTM's max_seq_len_delta: a window is at most bptt + 40


def check_size(
    n_tokens: int, batch_size: int, bptt: int, split: str = "train"
) -> None:
    """Raise a clear error when a split cannot fill one full window in every stream.

    Each of the `batch_size` streams needs `bptt` inputs plus one more token for the last
    target, so the split needs at least batch_size * (bptt + 1) tokens.
    """
    if batch_size < 1 or bptt < 1:
        raise RnnlabError(f"batch size and bptt must be at least 1 (got {batch_size}, {bptt})")
    if n_tokens < batch_size * (bptt + 1):
        raise RnnlabError(
            f"{split} split has {n_tokens} tokens: too small for --batch-size {batch_size} x "
            f"--bptt {bptt} (needs {batch_size * (bptt + 1)}); use a smaller batch or bptt"
        )


def batchify(
    ids: torch.Tensor, batch_size: int, *, bptt: int = 1, split: str = "train"
) -> torch.Tensor:
    """Cut a 1-D stream of ids into `batch_size` parallel streams: shape (T_total, B).

    Column b holds ids[b * T_total : (b + 1) * T_total]; the trailing remainder
    (len(ids) mod batch_size tokens) is dropped. Pass the `bptt` you will train with to get
    a clear error when the split is too small (`split` names it in that message).
    """
    if ids.dim() != 1:
        raise ValueError(f"batchify expects a 1-D tensor of ids, got shape {tuple(ids.shape)}")
    check_size(ids.numel(), batch_size, bptt, split)
    steps = ids.numel() // batch_size  # T_total
    streams = ids[: steps * batch_size].view(batch_size, steps)  # (B, T_total)
    return streams.t().contiguous()  # (T_total, B)


def _variable_length(bptt: int, generator: torch.Generator | None, max_len: int) -> int:
    """AWD-LSTM (Merity et al. 2018, section 4.1): usually bptt, sometimes bptt / 2, then
    jittered by N(0, 5), so window borders fall in different places every epoch."""
    mean = bptt if torch.rand((), generator=generator).item() < 0.95 else bptt / 2
    length = int(mean + VARIABLE_STD * torch.randn((), generator=generator).item())
    return min(max(min(VARIABLE_MIN_LEN, bptt), length), max_len)


def tbptt_windows(
    streams: torch.Tensor,
    bptt: int,
    *,
    variable: bool = False,
    generator: torch.Generator | None = None,
    max_len: int | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (x, y) windows of shape (T_w, B) covering `streams` (T_total, B) in order.

    y is x moved one step down the stream: y[t] = streams[i + t + 1] for x[t] = streams[i + t].
    With `variable=False` every window has `bptt` steps except possibly the last. With
    `variable=True` each length is drawn AWD-LSTM style from `generator` (torch's global RNG
    when None), so a seed fixes the windows; lengths are at least 5 (or bptt, if smaller) and
    at most `max_len` (default bptt + 40). AWD-LSTM scales the learning rate by T_w / bptt
    for each window; that is the trainer's business, T_w is `x.size(0)`.
    Windows are views into `streams`: no copy is made.
    """
    if bptt < 1:
        raise RnnlabError(f"bptt must be at least 1 (got {bptt})")
    cap = max_len if max_len is not None else bptt + VARIABLE_MAX_EXTRA
    total = streams.size(0)
    i = 0
    while i < total - 1:
        length = _variable_length(bptt, generator, cap) if variable else bptt
        length = min(length, total - 1 - i)
        yield streams[i : i + length], streams[i + 1 : i + 1 + length]  # (T_w, B) each
        i += length


def num_windows(streams: torch.Tensor | int, bptt: int) -> int:
    """How many windows `tbptt_windows(streams, bptt)` yields with fixed length: for progress
    bars and schedules. With `variable=True` it is the expected count, roughly (the mean
    window length is a little under bptt)."""
    total = streams if isinstance(streams, int) else streams.size(0)
    return math.ceil(max(total - 1, 0) / bptt)


def random_windows(ids: torch.Tensor, batch_size: int, length: int, num_batches: int,
                   generator: torch.Generator | None = None,
                   ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`num_batches` batches of `batch_size` windows of `length` tokens, each window starting
    at a random position of the 1-D `ids` (nanoGPT's `get_batch`): (x, y) of shape (T, B) each,
    y one token ahead of x. What a Transformer trains on: windows stand alone (no state is
    carried), so they need not follow each other; a seeded `generator` fixes them.
    """
    if length < 1 or batch_size < 1:
        raise RnnlabError(f"window length and batch size must be >= 1 (got {length}, "
                          f"{batch_size})")
    if ids.numel() <= length:
        raise RnnlabError(f"{ids.numel()} tokens are too few for windows of {length} (the "
                          "split needs at least one token more than the context length)")
    starts = torch.randint(ids.numel() - length, (num_batches, batch_size),
                           generator=generator)  # (N, B)
    offsets = torch.arange(length + 1)  # (T + 1,)
    windows = ids[(starts[..., None] + offsets).to(ids.device)]  # (N, B, T + 1)
    return [(w[:, :-1].t(), w[:, 1:].t()) for w in windows]  # (T, B) each
