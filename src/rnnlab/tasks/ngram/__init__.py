"""N-gram language model baseline (add-k, interpolated modified Kneser-Ney) over token ids."""

from rnnlab.tasks.ngram.model import NGramConfig, NGramModel

__all__ = ["NGramConfig", "NGramModel"]
