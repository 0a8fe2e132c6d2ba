"""Pretrained word vectors from a text file (GloVe, or word2vec's text format with a header).

Only the rows of words in the vocabulary are kept, so a 5 GB GloVe file costs one pass and
little memory. Words are looked up as written, then lower-cased (GloVe is lower-case).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from rnnlab.data.vocab import SPECIALS, Vocab
from rnnlab.errors import RnnlabError


@dataclass(frozen=True)
class Pretrained:
    vectors: torch.Tensor  # (len(vocab), dim); rows of words not found keep `init`'s values
    found: int  # vocabulary words (specials not counted) that the file has
    searched: int  # vocabulary words searched for

    def summary(self) -> str:
        share = 100.0 * self.found / max(self.searched, 1)
        return f"{self.found} of {self.searched} vocabulary words ({share:.1f}%) have a vector"


def load_pretrained(path: str | Path, vocab: Vocab, dim: int | None = None,
                    init: torch.Tensor | None = None) -> Pretrained:
    """Read `path` and return a (len(vocab), dim) matrix for an embedding layer.

    `init` gives the rows of words the file lacks (default: N(0, 0.1^2) with a fixed seed;
    `<pad>` is zero). `dim`, when given, must match the file's.
    """
    path = Path(path)
    if not path.is_file():
        raise RnnlabError(f"embeddings file {path} does not exist")
    wanted: dict[str, int] = {}
    for index, word in enumerate(vocab.itos):
        if word in SPECIALS:
            continue
        wanted.setdefault(word, index)
        wanted.setdefault(word.lower(), index)
    rows: dict[int, list[float]] = {}
    exact: set[int] = set()
    file_dim: int | None = None
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8").rstrip()
            except UnicodeDecodeError as err:
                raise RnnlabError(f"{path}:{line_no}: not UTF-8 ({err.reason})") from err
            parts = line.split(" ")
            if line_no == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec header "count dim"
            if not line:
                continue
            if file_dim is None:
                file_dim = len(parts) - 1
                if file_dim < 1:
                    raise RnnlabError(f"{path}:{line_no}: expected 'word v1 v2 ...'")
                if dim is not None and dim != file_dim:
                    raise RnnlabError(
                        f"{path} has {file_dim}-dimensional vectors, the model wants {dim} "
                        f"(set the embedding size to {file_dim})")
            if len(parts) - 1 != file_dim:
                raise RnnlabError(f"{path}:{line_no}: {len(parts) - 1} values, expected "
                                  f"{file_dim} as on the first line")
            word = parts[0]
            index = vocab.stoi.get(word)
            is_exact = index is not None and word not in SPECIALS
            if not is_exact:
                index = wanted.get(word)
            if index is None or index in exact:
                continue
            try:
                rows[index] = [float(v) for v in parts[1:]]
            except ValueError as err:
                raise RnnlabError(f"{path}:{line_no}: {err}") from err
            if is_exact:
                exact.add(index)
    if file_dim is None:
        raise RnnlabError(f"embeddings file {path} is empty")
    if init is None:
        generator = torch.Generator().manual_seed(0)
        init = torch.randn(len(vocab), file_dim, generator=generator) * 0.1
        init[vocab.pad_id] = 0.0
    vectors = init.clone()
    if rows:
        index = torch.tensor(list(rows))
        vectors[index] = torch.tensor(list(rows.values()), dtype=vectors.dtype)
    searched = len(vocab) - len(SPECIALS)
    return Pretrained(vectors=vectors, found=len(rows), searched=searched)
