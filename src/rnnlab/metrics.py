"""Metrics with the signature of how they were made (sacrebleu's habit)."""

from __future__ import annotations

import math

import torch

from rnnlab import __version__


def perplexity(nll: float, tokens: int) -> float:
    """exp of the mean negative log-likelihood in nats."""
    return math.exp(min(nll / max(tokens, 1), 700.0))


def bits_per_token(nll: float, tokens: int) -> float:
    return nll / max(tokens, 1) / math.log(2)


def signature(**parts: object) -> str:
    """E.g. `ppl|corpus:ptb|split:test|tok:word|vocab:10000|rnnlab:0.1.0|torch:2.13.0`."""
    fields = [f"{k}:{v}" for k, v in parts.items() if k != "metric"]
    fields += [f"rnnlab:{__version__}", f"torch:{torch.__version__.split('+')[0]}"]
    return "|".join([str(parts.get("metric", "metric")), *fields])
