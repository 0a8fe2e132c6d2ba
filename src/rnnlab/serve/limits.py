"""What one request may ask of the server, and how requests are batched: one frozen dataclass,
shared by the CLI flags, the request schemas and the batcher."""

from __future__ import annotations

from dataclasses import dataclass

from rnnlab.errors import RnnlabError


@dataclass(frozen=True)
class ServeLimits:
    # A request body larger than this is refused (413) before it is parsed.
    max_request_bytes: int = 65_536
    # Characters in one text (a sentence to classify, tag, translate or score, or a prime).
    max_text_chars: int = 2_000
    # Texts (sentences) in one request.
    max_items: int = 32
    # Tokens one sample may ask for.
    max_sample_length: int = 1_000
    # Widest beam a translation request may ask for.
    max_beam: int = 10
    # Requests gathered into one micro-batch (1: each request runs alone).
    max_batch: int = 32
    # How long the first request of a batch waits for others to join it, in milliseconds. No wait
    # by default (Triton's default too): what queued while the last batch ran joins anyway, and
    # under a closed loop of clients a wait only makes the batches take turns with the HTTP
    # work instead of overlapping it (benchmarks/results/s31_proc_w5.md: 2.55x at 32
    # clients with 5 ms, 4.15x with none, s31_proc_w0.md).
    batch_wait_ms: float = 0.0
    # Requests waiting per model (sampling streams included); beyond it, 503.
    max_queue: int = 256

    def __post_init__(self) -> None:
        for name in ("max_request_bytes", "max_text_chars", "max_items", "max_sample_length",
                     "max_beam", "max_batch", "max_queue"):
            if getattr(self, name) < 1:
                raise RnnlabError(f"{name.replace('_', '-')} must be at least 1, "
                                  f"got {getattr(self, name)}")
        if not 0 <= self.batch_wait_ms <= 1_000:
            raise RnnlabError(f"batch-wait-ms must be in [0, 1000], got {self.batch_wait_ms}")
