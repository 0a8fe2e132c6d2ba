"""Tokenizers: text -> list of token strings, and back.

Tokenizers return *strings*; `Vocab` turns them into ids. Keeping the two apart lets one
vocabulary class serve every level and keeps each tokenizer a few lines long. Each tokenizer
saves itself as a small JSON dict (`to_json`) inside a checkpoint and is rebuilt with
`tokenizer_from_json`, so `rnnlab sample RUN_DIR` tokenizes exactly as training did.

Line ends: the word and subword tokenizers turn every line end into `<eos>`, as Mikolov's PTB
and pytorch/examples' word_language_model do, so a model learns where sentences end and
`detokenize` can put the newlines back. The char tokenizer keeps `"\\n"` as a character.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Protocol

from rnnlab.data.vocab import EOS
from rnnlab.errors import RnnlabError


class Tokenizer(Protocol):
    name: str

    def encode(self, text: str) -> list[str]: ...

    def detokenize(self, tokens: Sequence[str]) -> str: ...

    def to_json(self) -> dict: ...


def _lines(text: str) -> list[str]:
    """Lines split at "\\n" only (a final newline does not start an empty line), matching
    `for line in open(f)`; unlike `str.splitlines`, form feeds and U+2028 stay in the line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _join_lines(tokens: Sequence[str], join_line) -> str:
    """Inverse of one-`<eos>`-per-line: each run of tokens up to `<eos>` is one line."""
    lines, current = [], []
    for tok in tokens:
        if tok == EOS:
            lines.append(join_line(current) + "\n")
            current = []
        else:
            current.append(tok)
    if current:
        lines.append(join_line(current))
    return "".join(lines)


class CharTokenizer:
    """Every character is a token (newlines included): the char-rnn setting."""

    name = "char"

    def encode(self, text: str) -> list[str]:
        return list(text)

    def detokenize(self, tokens: Sequence[str]) -> str:
        return "".join(tokens)

    def to_json(self) -> dict:
        return {"name": self.name}


class WordTokenizer:
    """Whitespace-separated words, `<eos>` at each line end (`eos_per_line=False`: none).

    No punctuation splitting or lower-casing: PTB and WikiText come tokenised already, and a
    user's corpus is used as given. Whitespace inside a line is not kept: `detokenize` joins
    words with single spaces.
    """

    name = "word"

    def __init__(self, eos_per_line: bool = True) -> None:
        self.eos_per_line = eos_per_line

    def encode(self, text: str) -> list[str]:
        if not self.eos_per_line:
            return text.split()
        tokens: list[str] = []
        for line in _lines(text):
            tokens.extend(line.split())
            tokens.append(EOS)
        return tokens

    def detokenize(self, tokens: Sequence[str]) -> str:
        if not self.eos_per_line:
            return " ".join(tokens)
        return _join_lines(tokens, " ".join)

    def to_json(self) -> dict:
        return {"name": self.name, "eos_per_line": self.eos_per_line}


def _import_sentencepiece():
    try:
        import sentencepiece
    except ImportError as err:
        raise RnnlabError(
            "subword tokenization needs sentencepiece: pip install sentencepiece"
        ) from err
    return sentencepiece


class SentencePieceTokenizer:
    """Subword pieces from a SentencePiece model trained on the training text (Kudo 2018).

    Each line is encoded on its own and followed by `<eos>` (SentencePiece itself has no
    newline piece). The trained model travels inside `to_json` as base64, so no extra file
    is needed next to a checkpoint. `sentencepiece` is imported only when used.
    """

    name = "subword"

    def __init__(self, model_proto: bytes) -> None:
        spm = _import_sentencepiece()
        self.model_proto = model_proto
        self._sp = spm.SentencePieceProcessor(model_proto=model_proto)

    @classmethod
    def train(
        cls, text: str, vocab_size: int = 8000, model_type: str = "unigram"
    ) -> SentencePieceTokenizer:
        """Train on `text` (the training split only, so valid/test stay unseen)."""
        spm = _import_sentencepiece()
        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter([line for line in _lines(text) if line.strip()]),
                model_writer=model,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=1.0,
                num_threads=1,  # one thread: the same text always gives the same model
                minloglevel=2,
            )
        except RuntimeError as err:
            reason = str(err).rsplit("] ", 1)[-1]  # drop sentencepiece's source location
            raise RnnlabError(
                f"cannot train a {vocab_size}-piece subword vocabulary on this text ({reason}); "
                f"use a smaller subword vocab size"
            ) from err
        return cls(model.getvalue())

    def __len__(self) -> int:
        return self._sp.get_piece_size()

    def encode(self, text: str) -> list[str]:
        tokens: list[str] = []
        for line in _lines(text):
            tokens.extend(self._sp.encode(line, out_type=str))
            tokens.append(EOS)
        return tokens

    def detokenize(self, tokens: Sequence[str]) -> str:
        return _join_lines(tokens, lambda pieces: self._sp.decode_pieces(list(pieces)))

    def to_json(self) -> dict:
        return {"name": self.name, "model": base64.b64encode(self.model_proto).decode("ascii")}


def make_tokenizer(level: str, **options) -> Tokenizer:
    """"char" or "word" (subword tokenizers must be trained: `SentencePieceTokenizer.train`)."""
    if level == "char":
        return CharTokenizer()
    if level == "word":
        return WordTokenizer(**options)
    raise RnnlabError(f"unknown tokenizer level {level!r}; use char, word or subword")


def tokenizer_from_json(data: dict) -> Tokenizer:
    """Rebuild a tokenizer saved with `to_json`."""
    name = data.get("name")
    if name == "char":
        return CharTokenizer()
    if name == "word":
        return WordTokenizer(eos_per_line=bool(data.get("eos_per_line", True)))
    if name == "subword":
        return SentencePieceTokenizer(base64.b64decode(data["model"]))
    raise RnnlabError(f"unknown tokenizer {name!r} in saved tokenizer data")

