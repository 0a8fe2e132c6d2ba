"""Sentences -> ids (words, characters, tags) -> padded batch tensors.

A batch of B sentences of at most T words, whose words have at most C characters:

    words        (B, T)     word ids, <pad> = 0 past each sentence's end
    chars        (B, T, C)  character ids of each word, <pad> = 0 past each word's end
    char_lengths (B, T)     characters per word (0 for padding words)
    lengths      (B,)       words per sentence
    tags         (B, T)     gold tag ids (0 past the end; the mask hides them)
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from rnnlab.data.vocab import Vocab
from rnnlab.errors import RnnlabError
from rnnlab.tasks.tag.data import Sentence

WORDS_FILE, CHARS_FILE, TAGS_FILE = "vocab.json", "chars.json", "tags.json"


@dataclass(frozen=True)
class Encoded:
    words: list[int]
    chars: list[list[int]]
    tags: list[int]


@dataclass
class Batch:
    words: Tensor
    chars: Tensor
    char_lengths: Tensor
    lengths: Tensor
    tags: Tensor

    @property
    def mask(self) -> Tensor:
        """(B, T) True on real words."""
        steps = torch.arange(self.words.shape[1], device=self.words.device)
        return steps[None, :] < self.lengths[:, None]

    def to(self, device: torch.device) -> Batch:
        return Batch(*(t.to(device) for t in (self.words, self.chars, self.char_lengths,
                                               self.lengths, self.tags)))


class TagVocab:
    """The word, character and tag vocabularies of a run (three JSON files in its directory)."""

    def __init__(self, words: Vocab, chars: Vocab, tags: list[str], lowercase: bool,
                 zero_digits: bool = False) -> None:
        self.words, self.chars, self.tags = words, chars, tags
        self.lowercase, self.zero_digits = lowercase, zero_digits
        self.tag_ids = {t: i for i, t in enumerate(tags)}

    @classmethod
    def build(cls, sentences: list[Sentence], min_freq: int, lowercase: bool,
              zero_digits: bool = False) -> TagVocab:
        words = [_key(w, lowercase, zero_digits) for s in sentences for w in s.words]
        chars = [c for s in sentences for w in s.words for c in w]
        tags = sorted({t for s in sentences for t in s.tags})
        return cls(Vocab.build(words, min_freq), Vocab.build(chars), tags, lowercase,
                   zero_digits)

    def key(self, word: str) -> str:
        """The form a word is looked up by in the word vocabulary (its characters stay as is)."""
        return _key(word, self.lowercase, self.zero_digits)

    def singletons(self, sentences: list[Sentence]) -> set[int]:
        """Ids of words seen once in `sentences` (candidates for <unk> replacement)."""
        counts = Counter(self.key(w) for s in sentences for w in s.words)
        return {self.words.stoi[w] for w, n in counts.items() if n == 1 and w in self.words}

    def encode(self, sentence: Sentence, source: str = "") -> Encoded:
        words = self.words.encode(self.key(w) for w in sentence.words)
        chars = [self.chars.encode(w) for w in sentence.words]
        tags = []
        for tag in sentence.tags:
            if tag not in self.tag_ids:
                raise RnnlabError(f"{source or 'data'}: tag {tag!r} is not among the "
                                  f"{len(self.tags)} tags seen in training")
            tags.append(self.tag_ids[tag])
        return Encoded(words, chars, tags)

    def save(self, run_dir: Path) -> None:
        self.words.save(run_dir / WORDS_FILE)
        self.chars.save(run_dir / CHARS_FILE)
        (run_dir / TAGS_FILE).write_text(json_dumps(self.tags), "utf-8")

    @classmethod
    def load(cls, run_dir: Path, lowercase: bool, zero_digits: bool = False) -> TagVocab:
        import json

        tags = json.loads((run_dir / TAGS_FILE).read_text("utf-8"))
        return cls(Vocab.load(run_dir / WORDS_FILE), Vocab.load(run_dir / CHARS_FILE), tags,
                   lowercase, zero_digits)


def json_dumps(value: object) -> str:
    import json

    return json.dumps(value, ensure_ascii=False) + "\n"


_DIGIT = re.compile(r"\d")


def _key(word: str, lowercase: bool, zero_digits: bool) -> str:
    """Lample et al. (2016) map every digit to 0, so 1987 and 2003 share one vector."""
    if lowercase:
        word = word.lower()
    return _DIGIT.sub("0", word) if zero_digits else word


def collate(examples: list[Encoded]) -> Batch:
    """Pad a list of encoded sentences into one Batch (shapes in the module docstring)."""
    if not examples:
        raise ValueError("cannot batch zero sentences")
    steps = max(len(e.words) for e in examples)
    width = max(len(c) for e in examples for c in e.chars)
    # padded in Python, then one tensor each: far faster than a small tensor per word
    no_chars = [0] * width
    words, tags, chars, char_lengths = [], [], [], []
    for e in examples:
        pad = steps - len(e.words)
        words.append(e.words + [0] * pad)
        tags.append((e.tags or [0] * len(e.words)) + [0] * pad)
        chars.append([c + [0] * (width - len(c)) for c in e.chars] + [no_chars] * pad)
        char_lengths.append([len(c) for c in e.chars] + [0] * pad)
    lengths = torch.tensor([len(e.words) for e in examples])
    return Batch(torch.tensor(words), torch.tensor(chars), torch.tensor(char_lengths), lengths,
                 torch.tensor(tags))
