"""Labelled sentences from SST, MR or a user's own table, tokenized, split and indexed.

Every example remembers where it came from (`file:line`), so a bad label or an empty text in a
file of 10,000 lines is reported with the line to fix. Splits that a corpus does not ship (MR
has none) are drawn from `split_seed` alone, so training, `eval` and every fold of a
cross-validation see the same partition.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rnnlab.data.io import read_text
from rnnlab.data.registry import corpus_files, get_corpus
from rnnlab.data.sentences import split_sentences
from rnnlab.data.vocab import Vocab
from rnnlab.errors import RnnlabError
from rnnlab.tasks.classify.config import ClassifyDataConfig

# Label names of the named corpora, in the order of their integer labels.
CORPUS_LABELS = {
    "sst2": ("negative", "positive"),
    "sst5": ("very negative", "negative", "neutral", "positive", "very positive"),
    "mr": ("negative", "positive"),
    "aclimdb": ("negative", "positive"),
}
EXTENSIONS = {".tsv": "tsv", ".txt": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}

# Words, with English clitics split off as the Penn Treebank (and so SST) does: "don't" ->
# "do n't", "it's" -> "it 's"; every other non-space, non-word character is a token of its own.
_TOKEN = re.compile(r"\w+(?=n't\b)|n't\b|'\w+|\w+|[^\w\s]")


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    return _TOKEN.findall(text.lower() if lowercase else text)


def tokenize_document(text: str, lowercase: bool = True) -> tuple[list[str], tuple[int, ...]]:
    """A document's tokens, and the length of each of its sentences (rnnlab.data.sentences)."""
    sentences = [tokens for tokens in (tokenize(s, lowercase) for s in split_sentences(text))
                 if tokens]
    return [t for tokens in sentences for t in tokens], tuple(len(t) for t in sentences)


def _lines(text: str) -> list[str]:
    """Lines split at "\\n" only: `str.splitlines` would also split at U+0085, which MR's
    Latin-1 bytes hold (0x85, an ellipsis in Windows-1252) in the middle of sentences."""
    return [line.rstrip("\r") for line in text.split("\n")]


@dataclass(frozen=True)
class Example:
    tokens: list[str]
    label: str
    where: str  # "file:line", for error messages
    sentences: tuple[int, ...] = ()  # documents: the length of each sentence, in order


@dataclass
class ClassifyData:
    name: str
    train: list[Example]
    valid: list[Example]
    test: list[Example] | None
    labels: list[str]
    vocab: Vocab
    notes: list[str] = field(default_factory=list)
    # A test set read only when asked for (IMDB: scored by `eval --split test` alone).
    read_test: Callable[[], list[Example]] | None = None

    def split(self, name: str) -> list[Example]:
        if name == "test" and self.test is None and self.read_test is not None:
            self.test = self.read_test()
        examples = {"train": self.train, "valid": self.valid, "test": self.test}.get(name)
        if examples is None:
            raise RnnlabError(f"{self.name} has no {name} split")
        return examples

    def encode(self, examples: list[Example], max_len: int) -> tuple[list[list[int]], list[int]]:
        """Token ids (truncated to `max_len`) and label ids; an unknown label names its line."""
        index = {label: i for i, label in enumerate(self.labels)}
        ids, labels = [], []
        for ex in examples:
            if ex.label not in index:
                raise RnnlabError(f"{ex.where}: label {ex.label!r} is not one of the training "
                                  f"labels ({', '.join(self.labels)})")
            ids.append(self.vocab.encode(ex.tokens[:max_len]))
            labels.append(index[ex.label])
        return ids, labels


# -- readers ---------------------------------------------------------------------------------


def _example(text: str, label: str, where: str, lowercase: bool,
             documents: bool = False) -> Example:
    """One labelled text; with `documents`, split into sentences as well."""
    if not label.strip():
        raise RnnlabError(f"{where}: empty label")
    tokens, sentences = tokenize_document(text, lowercase) if documents else (
        tokenize(text, lowercase), ())
    if not tokens:
        raise RnnlabError(f"{where}: empty text")
    return Example(tokens, label.strip(), where, sentences)


def read_sst(path: Path, names: tuple[str, ...], lowercase: bool) -> list[Example]:
    """SST lines: `label<space>text`, the label an integer index into `names`."""
    examples = []
    for number, line in enumerate(_lines(read_text(path)), 1):
        if not line.strip():
            continue
        label, _, text = line.partition(" ")
        if not label.isdigit() or int(label) >= len(names):
            raise RnnlabError(f"{path}:{number}: expected 'label text' with a label 0-"
                              f"{len(names) - 1}, got {line[:40]!r}")
        examples.append(_example(text, names[int(label)], f"{path}:{number}", lowercase))
    return examples


def read_lines(path: Path, label: str, encoding: str, lowercase: bool) -> list[Example]:
    """One text per line, all with `label` (MR's rt-polarity.pos / .neg)."""
    return [_example(line, label, f"{path}:{number}", lowercase)
            for number, line in enumerate(_lines(read_text(path, encoding)), 1)
            if line.strip()]


def read_table(path: str | Path, fmt: str | None, label_column: str, text_column: str,
               lowercase: bool, documents: bool = False) -> list[Example]:
    """A user's TSV/CSV (with a header row) or JSON-lines file.

    TSV is read without quote processing: a `"` is an ordinary character, as in the TSV files
    of GLUE/SST and `pandas.read_csv(sep="\\t", quoting=csv.QUOTE_NONE)`, so a stray quote can
    never swallow the rows after it. CSV keeps the usual quoting rules (RFC 4180). A UTF-8 BOM
    at the start of any format is dropped rather than read into the first column name. With
    `documents`, each text is a document whose sentences are split too.
    """
    path = Path(path)
    fmt = fmt or EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise RnnlabError(f"{path}: cannot tell the format from the extension {path.suffix!r}; "
                          "pass --file-format tsv, csv or jsonl")
    text = read_text(path).removeprefix("\ufeff")
    if fmt == "jsonl":
        examples = _read_jsonl(path, text, label_column, text_column, lowercase, documents)
    else:
        examples = _read_csv(path, text, fmt, label_column, text_column, lowercase,
                             documents)
    if not examples:
        raise RnnlabError(f"{path} holds no examples (only a header or blank lines)")
    return examples


def _read_csv(path: Path, text: str, fmt: str, label_column: str, text_column: str,
              lowercase: bool, documents: bool) -> list[Example]:
    if fmt == "tsv":
        reader = csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    else:
        reader = csv.reader(io.StringIO(text))
    try:
        return _read_rows(path, reader, label_column, text_column, lowercase, documents)
    except csv.Error as err:  # e.g. a field over the csv module's size limit
        raise RnnlabError(f"{path}:{reader.line_num}: cannot read this {fmt.upper()} row: "
                          f"{err}") from err


def _read_rows(path: Path, reader: Any, label_column: str, text_column: str,
               lowercase: bool, documents: bool) -> list[Example]:
    header = next(reader, None)
    if not header:
        raise RnnlabError(f"{path}:1: expected a header row naming the columns")
    for column in (label_column, text_column):
        if column not in header:
            raise RnnlabError(f"{path}:1: no column {column!r} in the header (columns: "
                              f"{', '.join(header)}); choose one with --label-column / "
                              "--text-column")
    label_at, text_at = header.index(label_column), header.index(text_column)
    examples = []
    for row in reader:
        where = f"{path}:{reader.line_num}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise RnnlabError(f"{where}: {len(row)} fields, the header has {len(header)}")
        examples.append(_example(row[text_at], row[label_at], where, lowercase, documents))
    return examples


def _read_jsonl(path: Path, text: str, label_key: str, text_key: str,
                lowercase: bool, documents: bool = False) -> list[Example]:
    examples = []
    for number, line in enumerate(_lines(text), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise RnnlabError(f"{where}: not valid JSON ({err.msg})") from err
        if not isinstance(record, dict):
            raise RnnlabError(f"{where}: expected a JSON object per line")
        for key in (label_key, text_key):
            if key not in record:
                raise RnnlabError(f"{where}: no key {key!r} (keys: {', '.join(record)})")
        examples.append(_example(str(record[text_key]), str(record[label_key]), where,
                                 lowercase, documents))
    return examples


# -- splits ----------------------------------------------------------------------------------


def fold_assignment(n: int, folds: int, seed: int) -> list[int]:
    """Fold of each example: a seeded permutation dealt round-robin (sizes differ by <= 1)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    assignment = [0] * n
    for position, index in enumerate(order):
        assignment[index] = position % folds
    return assignment


def carve(examples: list[Example], fraction: float, seed: int) -> tuple[list, list]:
    """(kept, held out): a seeded `fraction` of the examples held out, both in file order."""
    if not 0 < fraction < 1:
        raise RnnlabError(f"a held-out fraction must be between 0 and 1, got {fraction}")
    order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed))
    held = set(order[: max(1, round(len(examples) * fraction))].tolist())
    kept = [ex for i, ex in enumerate(examples) if i not in held]
    return kept, [ex for i, ex in enumerate(examples) if i in held]


def load_classify_data(config: ClassifyDataConfig, data_dir: str | None = None,
                       vocab: Vocab | None = None,
                       labels: list[str] | None = None) -> ClassifyData:
    """Read, split and index the data of `config`; `vocab`/`labels` of a trained run are
    reused as they are (for evaluation), otherwise built from the training split."""
    lower, notes, read_test = config.lowercase, [], None
    if config.train:
        name = Path(config.train).name
        table = (config.file_format, config.label_column, config.text_column, lower,
                 reads_documents(config))
        pool = read_table(config.train, *table)
        valid = read_table(config.valid, *table) if config.valid else None
        test = read_table(config.test, *table) if config.test else None
    elif config.corpus in ("sst2", "sst5"):
        name, files = config.corpus, corpus_files(config.corpus, data_dir)
        pool, valid, test = (read_sst(files[f], CORPUS_LABELS[name], lower)
                             for f in ("train.txt", "dev.txt", "test.txt"))
    elif config.corpus == "mr":
        name, files = "mr", corpus_files("mr", data_dir)
        encoding = get_corpus("mr").encoding  # Latin-1 bytes, as published
        pool = (read_lines(files["rt-polarity.neg"], "negative", encoding, lower)
                + read_lines(files["rt-polarity.pos"], "positive", encoding, lower))
        valid = test = None
    elif config.corpus == "aclimdb":
        from rnnlab.tasks.classify.documents import read_imdb

        name = "aclimdb"
        pool, valid, read_test, imdb_notes = read_imdb(config, data_dir)
        notes += imdb_notes
        test = []  # a placeholder until asked for (read_test)
    else:
        raise RnnlabError(f"unknown classification corpus {config.corpus!r}; choose sst2, sst5, "
                          "mr or aclimdb, or give your own --train file")
    seed = config.split_seed
    if config.folds:
        if test is not None:
            raise RnnlabError(f"{name} has its own test set: --folds is for data without one")
        if not 0 <= config.fold < config.folds:
            raise RnnlabError(f"--fold must be in 0..{config.folds - 1}, got {config.fold}")
        assignment = fold_assignment(len(pool), config.folds, seed)
        test = [ex for ex, f in zip(pool, assignment, strict=True) if f == config.fold]
        pool = [ex for ex, f in zip(pool, assignment, strict=True) if f != config.fold]
        notes.append(f"fold {config.fold} of {config.folds} (split seed {seed}) is the test set")
    elif test is None:
        pool, test = carve(pool, config.test_fraction, seed)
        notes.append(f"test = a seeded {config.test_fraction:.0%} of the data (seed {seed})")
    if valid is None:
        pool, valid = carve(pool, config.dev_fraction, seed + 1)
        notes.append(f"dev = a seeded {config.dev_fraction:.0%} of the training data")
    if labels is None:
        known = CORPUS_LABELS.get(name) if not config.train else None
        labels = list(known) if known else sorted({ex.label for ex in pool})
    if len(labels) < 2:
        raise RnnlabError(f"{name}: the training data has only one label ({labels[0]!r})")
    if vocab is None:
        from rnnlab.tasks.classify.documents import vocabulary_terms

        vocab = Vocab.build(vocabulary_terms(pool, config), config.min_freq, config.max_vocab)
    unit = "documents" if reads_documents(config) else "sentences"
    tested = "read by eval --split test" if read_test else len(test)
    notes.append(f"{len(pool)} train / {len(valid)} dev / {tested} test {unit}, "
                 f"{len(labels)} labels, vocabulary {len(vocab)}")
    return ClassifyData(name, pool, valid, None if read_test else test, labels, vocab, notes,
                        read_test)


def reads_documents(config: ClassifyDataConfig) -> bool:
    """Whether texts are documents split into sentences: for the hierarchical model, and for
    IMDB whatever the model (its `<br />` marks are paragraph breaks, not words)."""
    return getattr(config, "model", None) == "han" or (
        not config.train and config.corpus == "aclimdb")
