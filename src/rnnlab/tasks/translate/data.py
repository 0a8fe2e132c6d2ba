"""Parallel text: line-aligned source/target files -> tokens -> ids -> length-bucketed batches.

Tokenization (both sides alike; evaluation lower-cases the references too, so nothing is lost):
- words: the line is lower-cased and split by WORD_PATTERN: runs of letters/digits, which may
  be joined by an apostrophe or hyphen ("man's", "t-shirt" stay whole, as sacrebleu's 13a
  tokenizer keeps them), and every other non-space character as a token of its own;
- subwords (`subwords=N`): a sentencepiece model of N pieces per language, trained on the
  lower-cased training side only.
The source gets a closing <eos>, so even an empty line has one position to attend to; the
decoder reads <bos> y_1 .. y_n and predicts y_1 .. y_n <eos>.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from rnnlab.data.buckets import pad_batch
from rnnlab.data.io import read_text
from rnnlab.data.vocab import Vocab
from rnnlab.errors import RnnlabError
from rnnlab.tasks.translate.config import TranslateConfig

WORD_PATTERN = re.compile(r"\w+(?:['\u2019-]\w+)*|[^\w\s]")
NO_SPACE_BEFORE = re.compile(r" ([.,!?;:%)\]}])")
NO_SPACE_AFTER = re.compile(r"([(\[{]) ")
SPLITS = ("train", "valid", "test")


class SentenceTokenizer:
    """One sentence (a line) <-> tokens: lower-cased words, or sentencepiece subwords."""

    def __init__(self, subword_model: bytes | None = None) -> None:
        self.pieces = None
        if subword_model is not None:
            from rnnlab.data.tokenizers import SentencePieceTokenizer

            self.pieces = SentencePieceTokenizer(subword_model)

    @property
    def name(self) -> str:
        return "word" if self.pieces is None else "subword"

    @classmethod
    def train(cls, lines: list[str], subwords: int) -> SentenceTokenizer:
        if not subwords:
            return cls()
        from rnnlab.data.tokenizers import SentencePieceTokenizer

        text = "\n".join(line.lower() for line in lines) + "\n"
        return cls(SentencePieceTokenizer.train(text, vocab_size=subwords).model_proto)

    def encode(self, line: str) -> list[str]:
        line = line.strip().lower()
        if self.pieces is None:
            return WORD_PATTERN.findall(line)
        return self.pieces._sp.encode(line, out_type=str) if line else []

    def detokenize(self, tokens: list[str]) -> str:
        if self.pieces is not None:
            return self.pieces._sp.decode_pieces(list(tokens))
        text = NO_SPACE_BEFORE.sub(r"\1", " ".join(tokens))
        return NO_SPACE_AFTER.sub(r"\1", text)

    def to_json(self) -> dict:
        return {"name": "word"} if self.pieces is None else self.pieces.to_json()

    @classmethod
    def from_json(cls, data: dict) -> SentenceTokenizer:
        import base64

        return cls() if data.get("name") == "word" else cls(base64.b64decode(data["model"]))


@dataclass
class Split:
    src_text: list[str]  # the raw lines, kept for BLEU against the untouched references
    tgt_text: list[str]
    src: list[list[int]]  # ids, each ending in <eos>
    tgt: list[list[int]]  # ids, without <bos>/<eos>


@dataclass
class ParallelData:
    name: str
    src_tokenizer: SentenceTokenizer
    tgt_tokenizer: SentenceTokenizer
    src_vocab: Vocab
    tgt_vocab: Vocab
    splits: dict[str, Split]
    notes: list[str] = field(default_factory=list)


@dataclass
class Batch:
    src: Tensor  # (B, S) source ids, padded
    src_lengths: Tensor  # (B,)
    tgt_in: Tensor  # (B, T): <bos> y_1 .. y_n
    tgt_out: Tensor  # (B, T): y_1 .. y_n <eos>

    def to(self, device: torch.device) -> Batch:
        return Batch(self.src.to(device), self.src_lengths, self.tgt_in.to(device),
                     self.tgt_out.to(device))


def make_batch(src: list[list[int]], tgt: list[list[int]], vocab: Vocab) -> Batch:
    padded_src, lengths = pad_batch(src, vocab.pad_id)
    tgt_in, _ = pad_batch([[vocab.bos_id, *t] for t in tgt], vocab.pad_id)
    tgt_out, _ = pad_batch([[*t, vocab.eos_id] for t in tgt], vocab.pad_id)
    return Batch(padded_src, lengths, tgt_in, tgt_out)


def split_files(config: TranslateConfig, split: str,
                data_dir: str | None = None) -> tuple[Path, Path] | None:
    """(source file, target file) of a split, or None when the run has no such split."""
    if config.src_train or config.tgt_train:
        src, tgt = getattr(config, f"src_{split}"), getattr(config, f"tgt_{split}")
        if bool(src) != bool(tgt):
            raise RnnlabError(f"--src-{split} and --tgt-{split} go together: give both or neither")
        return (Path(src), Path(tgt)) if src else None
    from rnnlab.data.registry import corpus_files

    files = corpus_files(config.corpus, data_dir)
    names = (f"{split}.{config.src_lang}", f"{split}.{config.tgt_lang}")
    if any(name not in files for name in names):
        raise RnnlabError(f"corpus {config.corpus} has no {' / '.join(names)}")
    return files[names[0]], files[names[1]]


def read_parallel(src_path: Path, tgt_path: Path) -> tuple[list[str], list[str]]:
    """The lines of two line-aligned files; a different number of lines is an error."""
    src_lines = read_text(src_path).split("\n")
    tgt_lines = read_text(tgt_path).split("\n")
    for lines in (src_lines, tgt_lines):
        if lines and lines[-1] == "":
            lines.pop()  # the final newline ends the last line, it does not start one
    if len(src_lines) != len(tgt_lines):
        raise RnnlabError(
            f"parallel files are not line-aligned: {src_path} has {len(src_lines)} lines but "
            f"{tgt_path} has {len(tgt_lines)}"
        )
    if not src_lines:
        raise RnnlabError(f"{src_path} is empty")
    return src_lines, tgt_lines


def encode_split(src_lines: list[str], tgt_lines: list[str], data: ParallelData) -> Split:
    src = [data.src_vocab.encode([*data.src_tokenizer.encode(s)]) + [data.src_vocab.eos_id]
           for s in src_lines]
    tgt = [data.tgt_vocab.encode(data.tgt_tokenizer.encode(t)) for t in tgt_lines]
    return Split(src_lines, tgt_lines, src, tgt)


def load_parallel(config: TranslateConfig, data_dir: str | None = None, *,
                  splits: tuple[str, ...] = SPLITS,
                  saved: tuple[SentenceTokenizer, SentenceTokenizer, Vocab, Vocab] | None = None,
                  ) -> ParallelData:
    """Read, tokenize and encode `splits`. Tokenizers and vocabularies come from the training
    split, or from `saved` (a trained run's) when given; max_len filters training pairs only."""
    name = config.corpus if not config.src_train else f"{config.src_train}|{config.tgt_train}"
    notes: list[str] = []
    if saved is None:
        src_lines, tgt_lines = read_parallel(*split_files(config, "train", data_dir))
        src_tok = SentenceTokenizer.train(src_lines, config.subwords)
        tgt_tok = SentenceTokenizer.train(tgt_lines, config.subwords)
        min_freq = 1 if config.subwords else config.min_freq
        src_vocab = Vocab.build((t for s in src_lines for t in src_tok.encode(s)), min_freq)
        tgt_vocab = Vocab.build((t for s in tgt_lines for t in tgt_tok.encode(s)), min_freq)
        notes.append(f"vocabulary: {len(src_vocab)} {config.src_lang} / {len(tgt_vocab)} "
                     f"{config.tgt_lang} ({src_tok.name}, min_freq {min_freq})")
    else:
        src_tok, tgt_tok, src_vocab, tgt_vocab = saved
    data = ParallelData(name, src_tok, tgt_tok, src_vocab, tgt_vocab, {}, notes)
    for split in splits:
        files = split_files(config, split, data_dir)
        if files is None:
            continue
        encoded = encode_split(*read_parallel(*files), data)
        if split == "train":
            encoded = _filter(encoded, config.max_len, notes)
        data.splits[split] = encoded
    return data


def _filter(split: Split, max_len: int, notes: list[str]) -> Split:
    """Keep pairs whose sides are non-empty and at most max_len tokens (source <eos> aside)."""
    keep = [i for i, (s, t) in enumerate(zip(split.src, split.tgt, strict=True))
            if 1 < len(s) <= max_len + 1 and 0 < len(t) <= max_len]
    if not keep:
        raise RnnlabError(f"no training pair is non-empty with at most {max_len} tokens a side")
    dropped = len(split.src) - len(keep)
    if dropped:
        notes.append(f"dropped {dropped} of {len(split.src)} training pairs (empty or longer "
                     f"than {max_len} tokens)")
    return Split(*([part[i] for i in keep] for part in
                   (split.src_text, split.tgt_text, split.src, split.tgt)))
