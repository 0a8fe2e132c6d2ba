"""Tagged sentences from CoNLL-U (UD) and CoNLL column files, and entity tag schemes.

Schemes (for the tags of "New York City"):
    IOB1   I-LOC I-LOC I-LOC   (B- only where an entity directly follows one of the same type;
                                CoNLL-2003 as published)
    BIO    B-LOC I-LOC I-LOC   (IOB2: every entity opens with B-)
    BIOES  B-LOC I-LOC E-LOC   (E- closes an entity, S- is a one-word entity)
Any of them reads into BIO with `to_bio` (I- that opens an entity becomes B-, which is also how
the CoNLL evaluation script reads an invalid I-), and BIO converts to the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rnnlab.data.io import read_text
from rnnlab.errors import RnnlabError

DOCSTART = "-DOCSTART-"
ENTITY_PREFIXES = ("B-", "I-", "E-", "S-")


@dataclass(frozen=True)
class Sentence:
    words: list[str]
    tags: list[str]


# -- tag schemes ------------------------------------------------------------------------------


def is_entity_tagging(tags: Iterable[str]) -> bool:
    """True when every tag is O or B-/I-/E-/S- plus a type (NER, chunking), not POS labels."""
    return all(t == "O" or (t[:2] in ENTITY_PREFIXES and len(t) > 2) for t in tags)


def to_bio(tags: Sequence[str]) -> list[str]:
    """IOB1, BIO or BIOES -> BIO (IOB2)."""
    out: list[str] = []
    previous = "O"
    for tag in tags:
        prefix, kind = tag[:2], tag[2:]
        if prefix in ("E-", "I-"):
            # continues an entity only right after B-/I- of its own type (E-/S- close theirs)
            continues = previous[:2] in ("B-", "I-") and previous[2:] == kind
            new = ("I-" if continues else "B-") + kind
        elif prefix == "S-":
            new = "B-" + kind
        else:
            new = tag
        out.append(new)
        previous = "E-" + kind if prefix in ("E-", "S-") else new
    return out


def bio_to_bioes(tags: Sequence[str]) -> list[str]:
    """BIO -> BIOES: the last word of an entity becomes E- (S- if it is also the first)."""
    out = []
    for i, tag in enumerate(tags):
        following = tags[i + 1] if i + 1 < len(tags) else "O"
        ends = following != "I-" + tag[2:]
        if tag.startswith("B-"):
            out.append(("S-" if ends else "B-") + tag[2:])
        elif tag.startswith("I-"):
            out.append(("E-" if ends else "I-") + tag[2:])
        else:
            out.append(tag)
    return out


def bio_to_iob1(tags: Sequence[str]) -> list[str]:
    """BIO -> IOB1: B- is kept only where the previous word is in an entity of the same type."""
    out = []
    for i, tag in enumerate(tags):
        previous = tags[i - 1] if i else "O"
        if tag.startswith("B-") and previous[2:] != tag[2:]:
            tag = "I-" + tag[2:]
        out.append(tag)
    return out


def convert_tags(tags: Sequence[str], scheme: str) -> list[str]:
    """Any entity scheme -> `scheme` (bio, bioes or iob1); `none` leaves labels unchanged."""
    if scheme == "none":
        return list(tags)
    bio = to_bio(tags)
    if scheme == "bio":
        return bio
    if scheme == "bioes":
        return bio_to_bioes(bio)
    if scheme == "iob1":
        return bio_to_iob1(bio)
    raise ValueError(f"unknown tag scheme {scheme!r}")


# -- readers ----------------------------------------------------------------------------------


def read_conllu(path: str | Path, tag_field: str = "upos") -> list[Sentence]:
    """Sentences of a CoNLL-U file with the `upos` or `xpos` tag of each syntactic word.

    Multi-word token lines ("3-4 don't") and empty nodes ("5.1") are not words of the syntactic
    analysis and carry no tags of their own; the words they stand for ("do", "n't") are tagged.
    """
    import conllu

    text = read_text(path).removeprefix("\ufeff")  # a BOM would join the first word
    try:
        parsed = conllu.parse(text)
    except Exception as err:  # conllu raises its own ParseException and ValueErrors
        raise RnnlabError(f"{path}: not valid CoNLL-U ({err})") from err
    sentences = []
    for number, tokenlist in enumerate(parsed, 1):
        words, tags = [], []
        for token in tokenlist:
            if not isinstance(token["id"], int):
                continue  # a multi-word token range (tuple) or an empty node (decimal id)
            tag = token[tag_field]
            if not tag or tag == "_":
                raise RnnlabError(f"{path}: sentence {number} "
                                  f"({tokenlist.metadata.get('sent_id', 'no sent_id')}), word "
                                  f"{token['id']} {token['form']!r} has no {tag_field} tag")
            words.append(token["form"])
            tags.append(tag)
        if words:
            sentences.append(Sentence(words, tags))
    return sentences


def read_blocks(text: str) -> list[list[tuple[int, list[str]]]]:
    """Blank-line-separated blocks of (line number, columns); columns split on tabs if the line
    has one (so an empty column is visible), else on whitespace. `-DOCSTART-` lines are skipped."""
    blocks: list[list[tuple[int, list[str]]]] = []
    current: list[tuple[int, list[str]]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            if current:
                blocks.append(current)
            current = []
            continue
        columns = line.rstrip("\r\n").split("\t") if "\t" in line else line.split()
        if columns[0] == DOCSTART:
            continue
        current.append((number, columns))
    if current:
        blocks.append(current)
    return blocks


def read_columns(path: str | Path, token_column: int = 0,
                 tag_column: int | None = -1) -> list[Sentence]:
    """Sentences of a CoNLL-style file: one word a line in columns, a blank line between
    sentences. Every line must have as many columns as the first, and a non-empty tag."""
    blocks = read_blocks(read_text(path).removeprefix("\ufeff"))
    width: int | None = None
    sentences = []
    for block in blocks:
        words, tags = [], []
        for number, columns in block:
            if width is None:
                width = len(columns)
                for name, index in (("token", token_column), ("tag", tag_column)):
                    if index is not None and not -width <= index < width:
                        raise RnnlabError(f"{path}:{number}: {width} columns, no {name} column "
                                          f"{index} (columns count from 0)")
                if tag_column is not None and token_column % width == tag_column % width:
                    raise RnnlabError(f"{path}:{number}: the word and the tag would be the same "
                                      f"column of {width}: a tagging file needs a word column "
                                      "and a tag column")
            if len(columns) != width:
                raise RnnlabError(f"{path}:{number}: {len(columns)} columns, expected {width} "
                                  "as on the first line")
            word = columns[token_column]
            if not word:
                raise RnnlabError(f"{path}:{number}: empty token")
            words.append(word)
            if tag_column is not None:
                tag = columns[tag_column]
                if not tag:
                    raise RnnlabError(f"{path}:{number}: empty tag")
                tags.append(tag)
        sentences.append(Sentence(words, tags))
    return sentences


# -- a corpus ---------------------------------------------------------------------------------


@dataclass
class TagData:
    name: str
    train: list[Sentence]
    valid: list[Sentence]
    test: list[Sentence] | None
    scheme: str  # the scheme the tags are in now: none, bio or bioes
    notes: list[str] = field(default_factory=list)

    def split(self, name: str) -> list[Sentence]:
        sentences = {"train": self.train, "valid": self.valid, "test": self.test}.get(name)
        if sentences is None:
            raise RnnlabError(f"corpus {self.name} has no {name} split")
        return sentences


def load_tag_data(config, data_dir: str | None = None, scheme: str | None = None) -> TagData:
    """Read the corpus or files of a TagConfig and convert tags to its scheme (`scheme`, when
    given, is a resolved one saved by a run, replacing config.scheme's `auto`)."""
    fmt, token_column, tag_column = config.file_format, config.token_column, config.tag_column
    if config.train:
        if not config.valid:
            raise RnnlabError("--train needs --valid too (early stopping and the best "
                              "checkpoint are chosen on it)")
        paths = {"train": config.train, "valid": config.valid, "test": config.test}
        name = Path(config.train).name
    else:
        from rnnlab.data.registry import corpus_files, get_corpus

        info = get_corpus(config.corpus)
        if info.task != "tag":
            raise RnnlabError(f"corpus {config.corpus} is not a tagging corpus "
                              "(ud-english-ewt, conll2003)")
        files = corpus_files(config.corpus, data_dir)
        paths = {split: str(files[names[0]]) for split, names in info.splits.items()}
        name = config.corpus
        fmt = "conllu" if config.corpus.startswith("ud-") else "conll"
        token_column, tag_column = 0, -1
    splits: dict[str, list[Sentence] | None] = {}
    for split, path in paths.items():
        if path is None:
            splits[split] = None
        elif fmt == "conllu":
            splits[split] = read_conllu(path, config.field)
        else:
            splits[split] = read_columns(path, token_column, tag_column)
        if splits[split] is not None and not splits[split]:
            raise RnnlabError(f"{path}: no sentences")
    notes = []
    if scheme is None:
        scheme = config.scheme
        if scheme == "auto":
            entity = is_entity_tagging(t for s in splits["train"] for t in s.tags)
            scheme = "bio" if entity else "none"
            notes.append(f"tag scheme: {scheme} (auto)")
    if scheme != "none":
        if all(t == "O" for s in splits["train"] for t in s.tags):
            raise RnnlabError(f"{paths['train']}: every tag is O, so there is no entity to "
                              "learn and entity F1 is undefined (use --scheme none for plain "
                              "labels)")
        for split, sentences in splits.items():
            for s in sentences or []:
                if not is_entity_tagging(s.tags):
                    bad = next(t for t in s.tags if not is_entity_tagging([t]))
                    raise RnnlabError(f"{paths[split]}: tag {bad!r} is not O or B-/I-/E-/S-TYPE, "
                                      f"so it cannot be read in scheme {scheme} (use --scheme "
                                      "none for plain labels)")
            splits[split] = [Sentence(s.words, convert_tags(s.tags, scheme))
                             for s in sentences or []] or sentences
    return TagData(name, splits["train"], splits["valid"], splits["test"], scheme, notes)
