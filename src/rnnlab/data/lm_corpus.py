"""Language-model corpora: text -> tokens -> ids, split into train / valid / test.

One function, `load_lm_corpus`, serves named corpora and a user's own files. The rules per
corpus follow the papers whose numbers we compare against:

- tinyshakespeare: char level, first 90% train, last 10% valid, no test (nanoGPT, char-rnn).
- ptb: word level, Mikolov's three files, `<eos>` at every line end (Zaremba et al. 2014).
- warpeace: char level, BOM and CRLF normalised, 80/10/10 in order (Karpathy et al. 2015).
- irish-abc: char level, 90/5/5 in order; no published split exists, so we keep the
  same in-order rule with small held-out parts (the corpus is only 200 KB).
- wikitext-2: word level, `wiki.{train,valid,test}.tokens`, `<eos>` per line (as
  pytorch/examples word_language_model does; blank lines give a lone `<eos>`).
- your own files: `train=` alone is split in order, the last 10% becomes valid (and a test
  part only if `test_fraction` > 0); or pass `valid=` and `test=` files.

Splits are cut from the *text* at the given fractions. At char level the cut is exact (so
tinyshakespeare matches nanoGPT's int(0.9 n)); at word and subword level it moves forward to
the next line start, so no word is cut in half. The vocabulary is built from the training split
only; valid/test tokens it lacks become `<unk>` (and a note says how many).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rnnlab.config import check_fields
from rnnlab.config import field as option
from rnnlab.data.io import normalise_newlines, read_text
from rnnlab.data.registry import BUNDLED_DIR, CORPORA, corpus_files, get_corpus
from rnnlab.data.tokenizers import SentencePieceTokenizer, Tokenizer, make_tokenizer
from rnnlab.data.vocab import UNK, Vocab
from rnnlab.errors import RnnlabError

LEVELS = ("char", "word", "subword")
SPLITS = ("train", "valid", "test")
DEFAULT_VALID_FRACTION = 0.1  # of a user's single training file, taken from its end


@dataclass(frozen=True)
class LMDataConfig:
    """Which text, and how it becomes tokens: shared by the neural and the n-gram models."""

    corpus: str | None = option("tinyshakespeare", "named corpus (see `rnnlab info`)")
    train: str | None = option(None, "your own training text file (instead of --corpus)")
    valid: str | None = option(None, "your own validation text file")
    test: str | None = option(None, "your own test text file")
    level: str | None = option(None, "char, word or subword (default: the corpus's own level)",
                              choices=("char", "word", "subword"))
    min_freq: int = option(1, "drop tokens seen fewer times in train (they become <unk>)",
                           ge=1)
    max_vocab: int | None = option(None, "keep at most this many tokens (plus specials)",
                                  ge=1)
    subword_vocab: int = option(8000, "sentencepiece vocabulary size for --level subword",
                                ge=1)
    valid_fraction: float | None = option(
        None, "cut this fraction from the end of a single-file corpus as valid (default: the "
        "corpus's rule; 0.1 of your own --train file without --valid)", ge=0.0, lt=1.0)
    test_fraction: float | None = option(
        None, "cut this fraction from the end of a single-file corpus as test (default: the "
        "corpus's rule; none for your own file)", ge=0.0, lt=1.0)
    encoding: str = option("utf-8", "text encoding of your own files")

    def __post_init__(self) -> None:
        check_fields(self)



@dataclass
class LMCorpus:
    """Ids of each split as 1-D LongTensors, with the vocab and tokenizer that made them."""

    name: str
    level: str
    train: torch.Tensor  # (N_train,) int64
    valid: torch.Tensor  # (N_valid,) int64
    test: torch.Tensor | None  # (N_test,) int64, None when the corpus has no test split
    vocab: Vocab
    tokenizer: Tokenizer
    split_rule: str  # how the splits were made, in words
    notes: list[str] = field(default_factory=list)  # things the user should be told

    @property
    def signature(self) -> dict[str, str]:
        """The corpus part of a metric's signature: corpus, tokenization, vocabulary size."""
        return {"corpus": self.name, "tok": self.level, "vocab": str(len(self.vocab))}

    def splits(self) -> dict[str, torch.Tensor]:
        """The splits that exist, by name."""
        named = {"train": self.train, "valid": self.valid, "test": self.test}
        return {k: v for k, v in named.items() if v is not None}


def _read(path: Path, label: str, encoding: str, notes: list[str]) -> str:
    text, fix = normalise_newlines(read_text(path, encoding))
    if fix.changed:
        notes.append(f"{label}: {fix.describe()}")
    return text


def _cut(text: str, pos: int, exact: bool) -> int:
    """`pos`, or for word levels the start of the next line (next whitespace if no line)."""
    if exact or pos <= 0 or pos >= len(text):
        return pos
    newline = text.find("\n", pos - 1)
    if newline != -1:
        return newline + 1
    space = re.compile(r"\s").search(text, pos - 1)
    return space.end() if space else pos


def _split(text: str, valid: float, test: float, exact: bool, label: str):
    """In-order split: train | valid | test, by fractions of the text's characters."""
    if not (0 <= valid < 1 and 0 <= test < 1 and valid + test < 1):
        raise RnnlabError(f"split fractions must be in [0, 1) and sum below 1 ({valid}, {test})")
    n = len(text)
    a = _cut(text, int(n * round(1 - valid - test, 12)), exact)
    b = _cut(text, int(n * round(1 - test, 12)), exact) if test else n
    parts = (text[:a], text[a:b], text[b:] if test else None)
    if not parts[0] or (valid and not parts[1]) or (test and not parts[2]):
        raise RnnlabError(f"{label} is too small to split into train/valid/test; give more text")
    return parts


def _pct(fraction: float) -> str:
    return f"{round(100 * fraction, 6):g}%"


def load_lm_corpus(
    config: LMDataConfig | str,
    data_dir: str | Path | None = None,
    *,
    vocab: Vocab | None = None,
    tokenizer: Tokenizer | None = None,
) -> LMCorpus:
    """Load the text an `LMDataConfig` names: a named corpus (`"ptb"` is short for
    `LMDataConfig(corpus="ptb")`) or your own files (`LMDataConfig(train="my.txt")`; a train
    file takes the place of the corpus).

    `level` defaults to the corpus's own ("char" for your files); any level may be asked for
    any corpus. `min_freq` / `max_vocab` prune the vocabulary (word level: max_vocab counts
    words, not the four specials). `valid_fraction` / `test_fraction` override the in-order
    split of a single-file corpus; they cannot re-split a corpus that comes in split files.
    `encoding` applies to your own files (named corpora know theirs).
    `vocab` and `tokenizer` (a trained run's own) are used as given instead of being built
    from the training split, so a saved model is evaluated on exactly its ids.
    """
    c = LMDataConfig(corpus=config) if isinstance(config, str) else config
    corpus = None if c.train else c.corpus
    train, valid, test, level = c.train, c.valid, c.test, c.level
    min_freq, max_vocab, subword_vocab_size = c.min_freq, c.max_vocab, c.subword_vocab
    valid_fraction, test_fraction, encoding = c.valid_fraction, c.test_fraction, c.encoding
    notes: list[str] = []
    if corpus is None and train is None:
        raise RnnlabError("give either a corpus name or a train file")
    if corpus is not None:
        if valid is not None or test is not None:
            raise RnnlabError("valid/test files go with a train file, not a corpus name")
        info = get_corpus(corpus)
        name, encoding = corpus, info.encoding
        level = level or (tokenizer.name if tokenizer else info.level)
        files, v, t = _named_files(info, data_dir, valid_fraction, test_fraction, notes)
    else:
        name = Path(train).name
        level = level or (tokenizer.name if tokenizer else "char")
        files, v, t = _own_files(train, valid, test, valid_fraction, test_fraction)
    if tokenizer is not None:
        if level is not None and level != tokenizer.name:
            raise RnnlabError(f"level {level!r} does not match the {tokenizer.name} tokenizer")
        level = tokenizer.name
    if level not in LEVELS:
        raise RnnlabError(f"unknown level {level!r}; use one of {', '.join(LEVELS)}")
    if min_freq < 1:
        raise RnnlabError(f"min_freq must be at least 1 (got {min_freq})")

    source = "all" if "all" in files else "train"
    texts = {s: _read(p, name if s == "all" else p.name, encoding, notes) for s, p in files.items()}
    if v or t or source == "all":
        parts = _split(texts.pop(source), v, t, exact=level == "char", label=name)
        texts.update({s: text for s, text, f in zip(SPLITS, parts, (1, v, t), strict=True) if f})
        rule = f"in order from {files[source].name}: " + ", ".join(
            f"{s} {_pct(f)}" for s, f in zip(SPLITS, (1 - v - t, v, t), strict=True) if f
        )
        if corpus is None and v:
            notes.append(f"no valid file given: the last {_pct(v)} of {name} is the valid split")
    else:
        rule = "given files: " + ", ".join(f"{s}={p.name}" for s, p in files.items())
    if "valid" not in texts:
        raise RnnlabError(f"{name} has no valid split: give a valid file or a valid fraction > 0")

    if tokenizer is None and level == "subword":
        tokenizer = SentencePieceTokenizer.train(texts["train"], subword_vocab_size)
    elif tokenizer is None:
        tokenizer = make_tokenizer(level)
    train_tokens = tokenizer.encode(texts["train"])
    if vocab is None:
        vocab = Vocab.build(train_tokens, min_freq=min_freq, max_size=max_vocab)
    ids = {"train": _ids(vocab, train_tokens)}
    for split in ("valid", "test"):
        if split in texts:
            tokens = tokenizer.encode(texts[split])
            ids[split] = _ids(vocab, tokens)
            unseen = int((ids[split] == vocab.unk_id).sum()) - tokens.count(UNK)
            if unseen:
                notes.append(f"{split}: {unseen} of {len(tokens)} tokens are not in the "
                             f"training vocabulary and map to {UNK}")
    return LMCorpus(name, level, ids["train"], ids["valid"], ids.get("test"), vocab, tokenizer,
                    rule, notes)


def _ids(vocab: Vocab, tokens: list[str]) -> torch.Tensor:
    return torch.tensor(vocab.encode(tokens), dtype=torch.long)  # (N,)


def _named_files(info, data_dir, valid_fraction, test_fraction, notes):
    """A registry corpus's files by split, and the (valid, test) fractions still to cut."""
    if info.task != "lm":
        lm = ", ".join(n for n, c in CORPORA.items() if c.task == "lm")
        raise RnnlabError(f"{info.name} is a {info.task} corpus; language-model corpora: {lm}")
    paths = corpus_files(info.name, data_dir)
    if any(p.parent == BUNDLED_DIR for p in paths.values()):
        notes.append(f"{info.name}: no data directory has it, using the copy bundled with rnnlab")
    files = {s: paths[fs[0]] for s, fs in info.splits.items()}
    if info.split_fractions is not None:  # one file: cut in order by the corpus's rule
        v = info.split_fractions[0] if valid_fraction is None else valid_fraction
        t = info.split_fractions[1] if test_fraction is None else test_fraction
        return files, v, t
    if valid_fraction is not None or test_fraction is not None:
        raise RnnlabError(f"{info.name} comes in split files; split fractions cannot re-split it")
    return files, 0.0, 0.0


def _own_files(train, valid, test, valid_fraction, test_fraction):
    """A user's files by split; a missing valid split is cut from the end of train."""
    files = {"train": Path(train)}
    files.update({s: Path(p) for s, p in (("valid", valid), ("test", test)) if p})
    if (valid and valid_fraction is not None) or (test and test_fraction is not None):
        raise RnnlabError("give a valid/test file or a split fraction for it, not both")
    v = 0.0 if valid else (DEFAULT_VALID_FRACTION if valid_fraction is None else valid_fraction)
    t = 0.0 if test else (test_fraction or 0.0)
    return files, v, t
